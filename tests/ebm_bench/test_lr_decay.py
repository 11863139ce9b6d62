"""lr_decay_from, the loop's learning-rate schedule (ebm_bench.schedule): linear to 0 from step N to the budget's end,
as the ladder papers and the EBGAN paper's appendix D decay it."""

from __future__ import annotations

import pytest

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.schedule import LoopOptions, split_options
from ebm_bench.train import Trainer, prepare


def test_the_factor_is_1_before_n_then_falls_linearly_to_0_at_the_end():
    options = LoopOptions(lr_decay_from=6)
    # end 10: steps 6..9 train with (10 - s) / 4
    assert [options.lr_factor(s, 10) for s in range(10)] == [1.0] * 7 + [0.75, 0.5, 0.25]
    assert LoopOptions().lr_factor(9, 10) == 1.0  # no decay
    assert LoopOptions(lr_decay_from=12).lr_factor(9, 10) == 1.0  # a budget that ends first never decays
    assert LoopOptions(lr_decay_from=0).lr_factor(0, 4) == 1.0 and LoopOptions(lr_decay_from=0).lr_factor(3, 4) == 0.25


@pytest.mark.parametrize("value, message", [(-1, ">= 0"), (2.5, "whole number"), ("soon", "whole number")])
def test_a_bad_decay_step_is_one_line_naming_the_fix(value, message):
    with pytest.raises(ConfigError, match=f"lr_decay_from.*{message}.*-o lr_decay_from=80000"):
        split_options("ebgan", {"lr_decay_from": value})


def tiny(mnist_root, out, **overrides) -> RunConfig:
    values = dict(method="ebgan", budget=Budget("steps", 10), batch_size=16, z_dim=8, holdout=100,
                  mlp=MLPConfig(n_layer_g=2, size_g=16, n_layer_d=2, size_d=16), data_root=str(mnist_root),
                  out=str(out), log_every=5, download=False, method_options={"lr_decay_from": 6})
    return RunConfig(**(values | overrides))


def test_each_step_trains_with_its_decayed_learning_rates_and_the_option_is_in_the_run_s_identity(
        mnist_root, tmp_path):
    run = prepare(tiny(mnist_root, tmp_path))
    assert run.resolved["method_options"]["lr_decay_from"] == 6
    assert run.run_id != prepare(tiny(mnist_root, tmp_path, method_options={})).run_id
    run.run_dir.mkdir(parents=True)
    trainer = Trainer(run)
    seen = []
    for optimizer, which in ((trainer.opt_d, "d"), (trainer.opt_g, "g")):
        step = optimizer.step

        def record(*args, _step=step, _optimizer=optimizer, _which=which, **kwargs):
            seen.append((_which, _optimizer.param_groups[0]["lr"]))
            return _step(*args, **kwargs)
        optimizer.step = record
    for step in range(10):
        trainer.step(step, check_contract=step == 0)
    factors = [1.0] * 7 + [0.75, 0.5, 0.25]
    assert [lr for which, lr in seen if which == "d"] == pytest.approx([1e-3 * f for f in factors])
    assert [lr for which, lr in seen if which == "g"] == pytest.approx([1e-3 * f for f in factors])


def test_a_budget_in_seconds_cannot_decay_to_its_end(mnist_root, tmp_path):
    run = prepare(tiny(mnist_root, tmp_path, budget=Budget("seconds", 5)))
    with pytest.raises(ConfigError, match="lr_decay_from.*--steps or --images"):
        Trainer(run)
