"""Config identity: the same settings, however spelled, are the same run; committed records keep their ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ebm_bench import Budget, RunConfig
from ebm_bench.config import canonical, config_hash, parse_value
from ebm_bench.errors import ConfigError
from ebm_bench.methods import make_method

RECORDS = sorted((Path(__file__).resolve().parents[2] / "leaderboards").glob("*/records/*/config.json"))


def resolved(margin, steps=2000) -> dict:
    config = RunConfig(method="ebgan", budget=Budget("steps", steps))
    return config.to_dict() | {"method_options": make_method("ebgan", {"margin": margin}).options()}


def test_margin_10_and_10_point_0_are_the_same_run():
    assert config_hash(resolved(10)) == config_hash(resolved(10.0)) == config_hash(resolved("10"))
    assert config_hash(resolved(10)) != config_hash(resolved(10.5))


def test_a_step_budget_written_as_a_float_is_the_same_run():
    assert config_hash(resolved(10, steps=2000)) == config_hash(resolved(10, steps=2000.0))
    assert canonical(resolved(10, steps=2000.0))["budget"]["amount"] == 2000


def test_values_are_typed_by_their_declared_field():
    data = canonical(RunConfig().to_dict() | {"batch_size": 64.0, "seed": "3"})
    assert data["batch_size"] == 64 and isinstance(data["batch_size"], int) and data["seed"] == 3
    with pytest.raises(ConfigError, match="batch_size must be a whole number"):
        canonical(RunConfig().to_dict() | {"batch_size": 64.5})
    with pytest.raises(ConfigError, match="gamma must be a number, got 'abc'"):
        make_method("began", {"gamma": "abc"})


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.parent.name)
def test_committed_records_keep_their_run_ids(path):
    assert path.parent.name.endswith(config_hash(json.loads(path.read_text()))[:10])


def test_one_value_parser():
    assert [parse_value(t) for t in ("3", "0.5", "1e-3", "true", "None", "adam")] == [3, 0.5, 1e-3, True, None,
                                                                                       "adam"]


def test_tf32_is_a_different_run_and_cuda_graphs_is_only_how_one_trains():
    default = resolved(10)
    assert config_hash(default | {"matmul": "tf32"}) != config_hash(default)
    assert config_hash(default | {"matmul": "float32"}) == config_hash({k: v for k, v in default.items()
                                                                        if k != "matmul"})  # older records
    assert config_hash(default | {"cuda_graphs": False}) == config_hash(default)
    with pytest.raises(ConfigError, match="unknown matmul precision 'bf16'; use float32 or tf32"):
        RunConfig(matmul="bf16").validate()


@pytest.mark.parametrize("budget", [Budget("seconds", float("inf")), Budget("seconds", float("nan")),
                                    Budget("steps", float("inf")), Budget("images", -64)])
def test_every_budget_is_finite_and_positive(budget):
    with pytest.raises(ConfigError, match=f"the budget must be a positive number of {budget.kind}, finite"):
        budget.validate()


@pytest.mark.parametrize("seed", [-1, 2**64, 10**20, 1.5])
def test_a_seed_outside_torchs_range_is_refused_naming_the_range(seed):
    with pytest.raises(ConfigError, match="is out of range: a seed is a whole number from 0 to 18446744073709551615"):
        RunConfig(seed=seed).validate()
    RunConfig(seed=2**64 - 1).validate()


def test_a_large_seed_keeps_every_digit_in_the_identity():
    seeds = [canonical(RunConfig(seed=2**63 + k).to_dict())["seed"] for k in (1, 2)]
    assert seeds == [2**63 + 1, 2**63 + 2]  # through a float both were 2**63: two runs with one identity


@pytest.mark.parametrize("field, value", [("lr_g", float("inf")), ("batch_size", float("inf")),
                                          ("z_dim", "nan")])
def test_no_numeric_setting_takes_inf_or_nan(field, value):
    from ebm_bench.config import MLPConfig, OptimConfig, coerce_fields

    cls = OptimConfig if field == "lr_g" else RunConfig
    with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
        coerce_fields(cls, {field: value}, "run")
    with pytest.raises(ConfigError, match="learning rates must be positive and finite"):
        OptimConfig(lr_d=float("inf")).validate()
    assert coerce_fields(MLPConfig, {"size_g": "800"}, "mlp") == {"size_g": 800}


def test_eval_every_n_below_a_batch_is_refused_when_energies_are_scored():
    with pytest.raises(ConfigError, match="--eval-every-n 32 is below its minimum, the batch size 64"):
        RunConfig(eval_every=100, eval_every_n=32).validate()
    RunConfig(eval_every=100, eval_every_n=32, holdout=0).validate()  # no held-out batch: no energies to score
    RunConfig(eval_every=0, eval_every_n=32).validate()
