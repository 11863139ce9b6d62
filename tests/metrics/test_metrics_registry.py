"""The metric registry and `score_images` (ebm_bench.metrics): names, directions, N and provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import (
    CLASSIFIER_SHA256,
    METRICS,
    TORCH_FIDELITY_VERSION,
    headline_order,
    over_training_metrics,
    parse_metric_names,
    ranking_order,
    register_metric,
    score_images,
    score,
)


def test_registry_names_and_directions():
    prdc = {"precision", "recall", "density", "coverage"}
    inception_prdc = {f"inception_{name}" for name in prdc}
    assert set(METRICS) == {"i_prime", "mnist_is", "classes_covered", "class_kl", "fid_mnist", "is", "fid", "kid",
                            "is_std", "kid_std", "energy_auroc", "energy_heldout_mean", "energy_generated_mean",
                            "test_error", *prdc, *inception_prdc}
    higher = {name for name, info in METRICS.items() if info.direction == "higher"}
    lower = {name for name, info in METRICS.items() if info.direction == "lower"}
    assert higher == {"i_prime", "mnist_is", "classes_covered", "is", *prdc, *inception_prdc}
    assert lower == {"class_kl", "fid_mnist", "fid", "kid", "test_error"}
    assert {name for name, m in METRICS.items() if m.direction is None} == {  # no better side
        "energy_auroc", "energy_heldout_mean", "energy_generated_mean", "is_std", "kid_std"}
    assert all(metric.description for metric in METRICS.all().values())


def test_a_metrics_facts_live_on_its_descriptor():
    """Scored over training, shown first, ranked by default, provenance: each a field of the registered metric,
    read by evaluation, leaderboards, plots and the summary (no list of names elsewhere)."""
    assert set(over_training_metrics()) == {"i_prime", "classes_covered", "fid_mnist", "precision", "recall",
                                            "test_error"}
    # test_error first: only semi-supervised runs hold it, and where they do it is their task's score
    assert headline_order()[:6] == ["test_error", "fid_mnist", "i_prime", "classes_covered", "precision", "recall"]
    assert ranking_order() == ["test_error", "fid_mnist", "fid", "i_prime", "mnist_is", "classes_covered"]
    assert METRICS["recall"].provenance == ("prdc_k",) and METRICS["kid_std"].provenance == ("kid",)
    assert METRICS["fid"].over_training is False  # Inception is too slow to run every few hundred steps


def test_a_plugin_metric_declares_its_facts_in_one_place(own_metrics):
    from ebm_bench.leaderboard import default_rank_by, headline_metrics
    from ebm_bench.plots import default_metrics
    import pandas as pd

    register_metric("sharpness_x", "higher", "samples", over_training=True, headline=0, ranking=0)(lambda inputs: 1.0)
    assert "sharpness_x" in over_training_metrics()
    assert headline_order()[0] == ranking_order()[0] == "sharpness_x"
    assert default_rank_by(["fid_mnist", "sharpness_x"]) == "sharpness_x"
    assert headline_metrics(["fid_mnist", "i_prime", "sharpness_x"], None, 2) == ["sharpness_x", "fid_mnist"]
    records = pd.DataFrame({"evaluation.fid_mnist": [1.0], "evaluation.sharpness_x": [2.0]})
    assert default_metrics(records) == ["evaluation.sharpness_x", "evaluation.fid_mnist"]
    with pytest.raises(ConfigError, match="unknown field.*rank_first"):
        register_metric("sharpness_y", "higher", "samples", rank_first=True)(lambda inputs: 1.0)
    with pytest.raises(ConfigError, match="headline is a whole number"):
        register_metric("sharpness_z", "higher", "samples", headline="first")(lambda inputs: 1.0)


def test_parse_metric_names_deduplicates_and_rejects_unknown_names():
    assert parse_metric_names(" fid,i_prime,fid ") == ["fid", "i_prime"]
    with pytest.raises(ConfigError) as error:
        parse_metric_names(["fid", "sharpness"])
    assert "sharpness" in str(error.value) and all(name in str(error.value) for name in METRICS)
    with pytest.raises(ConfigError, match="no metrics"):
        parse_metric_names("")


def test_score_images_records_provenance(mnist_root, mnist_test_images):
    ((scores, record),) = score(["mnist_is", "fid_mnist"], mnist_test_images[:300], n=250, data_root=mnist_root)
    assert set(scores) == {"mnist_is", "fid_mnist"}
    assert record["n"] == 250 and record["n_reference"] == 250 and record["reference"] == "mnist-test"
    assert record["classifier_sha256"] == CLASSIFIER_SHA256
    assert record["torch_fidelity_version"] == TORCH_FIDELITY_VERSION
    assert record["inception_weights_sha256"] is None  # no Inception metric was computed
    # The first 250 test images against the first 250 test images: the same set.
    assert scores["fid_mnist"] == pytest.approx(0.0, abs=1e-6)


def test_score_images_with_more_n_than_images_is_a_config_error(mnist_test_images):
    with pytest.raises(ConfigError, match="n=20"):
        score_images(mnist_test_images[:10], ["i_prime"], n=20)


def test_classifier_metrics_refuse_colour_images():
    with pytest.raises(ConfigError, match="MNIST classifier"):
        score_images(torch.zeros(4, 3, 32, 32), ["i_prime"])


def test_mnist_reference_refuses_images_of_another_kind():
    with pytest.raises(ConfigError, match="reference mnist-test"):
        score_images(torch.zeros(4, 3, 64, 64), ["fid"])


def test_uint8_images_are_refused_with_a_hint():
    with pytest.raises(ConfigError, match="to_unit_range"):
        score_images(torch.zeros(4, 1, 32, 32, dtype=torch.uint8), ["i_prime"])


@pytest.fixture
def own_metrics(monkeypatch):
    """METRICS as it is now, restored after the test."""
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))
    return METRICS


@pytest.mark.parametrize("value, expected", [
    (0.25, 0.25), (3, 3.0), (torch.tensor(0.5), 0.5), (torch.tensor([0.75]), 0.75), (np.float32(1.5), 1.5),
    (float("nan"), None),
])
def test_a_metric_may_return_any_one_number(value, expected, own_metrics):
    register_metric("test-number", "higher", "samples")(lambda inputs: value)
    score = score_images(torch.zeros(4, 1, 32, 32), ["test-number"])["test-number"]
    assert type(score) is float and (score == expected if expected is not None else score != score)


def test_a_metric_that_returns_something_else_is_named_in_one_line(own_metrics):
    @register_metric("test-word", "higher", "samples")
    def word(inputs):
        return "sharp"

    register_metric("test-vector", "higher", "samples")(lambda inputs: torch.zeros(3))
    with pytest.raises(ConfigError) as error:
        score_images(torch.zeros(4, 1, 32, 32), ["test-word"])
    assert str(error.value) == (f"metric 'test-word' (test_a_metric_that_returns_something_else_is_named_in_one_line."
                                f"<locals>.word in {__file__}) returned str 'sharp'; a metric returns one number "
                                "(a float)")
    with pytest.raises(ConfigError, match=r"'test-vector' .* returned a tensor of shape \(3,\)"):
        score_images(torch.zeros(4, 1, 32, 32), ["test-vector"])


def test_a_metric_that_raises_is_named_in_one_line_and_our_own_errors_pass_through(own_metrics):
    @register_metric("test-raises", "higher", "samples")
    def raises(inputs):
        return {}["missing"]

    with pytest.raises(ConfigError, match=r"metric 'test-raises' \(.*raises in .*\) raised KeyError: 'missing'; fix"):
        score_images(torch.zeros(4, 1, 32, 32), ["test-raises"])
    register_metric("test-needs-reference", "higher", "samples")(lambda inputs: inputs.reference.n)
    with pytest.raises(ConfigError, match="^this metric compares against a reference set, and none was given$"):
        score_images(torch.zeros(4, 1, 32, 32), ["test-needs-reference"], reference=None)


def test_a_metric_name_registered_twice_needs_replace(own_metrics):
    builtin = METRICS["fid"]
    with pytest.raises(ConfigError, match="metric 'fid' is registered twice: by <lambda> in .*inception.py and by"):
        register_metric("fid", "lower", "samples")(lambda inputs: 0.0)
    assert METRICS["fid"] is builtin
    register_metric("fid", "lower", "samples", replace=True)(lambda inputs: 0.0)
    assert METRICS["fid"] is not builtin and METRICS["fid"].needs == "samples"
