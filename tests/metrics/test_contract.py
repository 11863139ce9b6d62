"""Every registered metric: it declares a valid direction and need, its direction holds on a good and a bad case
of its kind, and it returns a hand-computed value on a known case. A built-in metric without a known case here
fails `test_every_builtin_metric_has_a_known_case`."""

from __future__ import annotations

import math

import pytest
import torch

from ebm_bench.metrics import METRICS, NEEDS, MetricInputs, Reference

P = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
# By hand for P: p(y) = (0.5, 0.5).
# I' = E_x KL(p(y) || p(y|x)) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = 0.510826
# MNIST-IS = exp E_x KL(p(y|x) || p(y)) = exp(0.9 ln 1.8 + 0.1 ln 0.2) = 1.444971
# classes covered = 2; class KL of the balanced argmax histogram = 0
# Features [0], [2] against [1], [3]: equal variances, means 1 and 2: Frechet distance 1.
SEVEN = torch.arange(7.0).unsqueeze(1)
KNOWN = {
    "i_prime": ({"classifier_log_probs": P.log()}, 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5.0)),
    "mnist_is": ({"classifier_log_probs": P.log()}, math.exp(0.9 * math.log(1.8) + 0.1 * math.log(0.2))),
    "classes_covered": ({"classifier_log_probs": P.log()}, 2.0),
    "class_kl": ({"classifier_log_probs": P.log()}, 0.0),
    "fid_mnist": ({"classifier_features": torch.tensor([[0.0], [2.0]]),
                   "reference_classifier_features": torch.tensor([[1.0], [3.0]])}, 1.0),
    # Features equal to the reference 0..6 (k = 5): every point lies in a ball of the other set, so precision,
    # recall and coverage are 1. Real 5-NN radii are 5, 4, 3, 3, 3, 4, 5; the points 0 and 6 lie in 4 balls, the
    # other five in all 7: density = (4 + 5 * 7 + 4) / (k M) = 43 / 35.
    **{name: ({"classifier_features": SEVEN, "reference_classifier_features": SEVEN}, value) for name, value in
       (("precision", 1.0), ("recall", 1.0), ("coverage", 1.0), ("density", 43 / 35))},
    "energy_auroc": ({"energy_real": torch.tensor([0.0, 1.0]), "energy_fake": torch.tensor([0.5, 3.0])}, 0.75),
    "energy_heldout_mean": ({"energy_real": torch.tensor([0.0, 1.0]), "energy_fake": torch.tensor([9.0])}, 0.5),
    "energy_generated_mean": ({"energy_real": torch.tensor([0.0]), "energy_fake": torch.tensor([1.0, 5.0])}, 3.0),
    # predicts 0, 1, 1 against labels 0, 0, 1: one of three wrong
    "test_error": ({"class_logits": torch.tensor([[2.0, 1.0], [0.0, 1.0], [0.0, 5.0]]),
                    "class_labels": torch.tensor([0, 0, 1])}, 100 / 3),
}
INCEPTION = {"is", "is_std", "fid", "kid", "kid_std", "inception_precision", "inception_recall",
             "inception_density", "inception_coverage"}  # checked on real images below (one small test: slow on a CPU)


def known_inputs(values: dict) -> MetricInputs:
    inputs = MetricInputs(samples=torch.zeros(2, 1, 32, 32), energy_real=values.get("energy_real"),
                          energy_fake=values.get("energy_fake"), class_logits=values.get("class_logits"),
                          class_labels=values.get("class_labels"))
    # pre-fills the cached classifier pass (log-probabilities, features), as if the classifier had run
    if "classifier_log_probs" in values or "classifier_features" in values:
        inputs.__dict__["_classifier_outputs"] = (values.get("classifier_log_probs"),
                                                  values.get("classifier_features"))
    if "reference_classifier_features" in values:
        inputs.__dict__["reference_classifier_features"] = values["reference_classifier_features"]
    return inputs


@pytest.mark.parametrize("name", sorted(METRICS.all()))
def test_every_metric_declares_a_direction_and_a_need(name):
    metric = METRICS[name]
    assert metric.name == name and metric.needs in NEEDS and metric.direction in ("higher", "lower", None)
    assert metric.description


def test_every_builtin_metric_has_a_known_case():
    builtin = {name for name, m in METRICS.items() if m.compute.__module__.startswith("ebm_bench.metrics")}
    assert builtin - INCEPTION <= set(KNOWN)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_value_on_a_known_case(name):
    values, expected = KNOWN[name]
    assert METRICS[name].compute(known_inputs(values)) == pytest.approx(expected, abs=1e-6)


FIDELITY_ONLY = {"precision", "density"}  # blind to a lost mode by design: their bad case is a damaged digit


def classifier_cases(mnist_test_images, mnist_test, name: str = ""):
    """Good: 1000 real test digits. Bad: 1000 test images of the digit 1 alone, or for a fidelity-only metric the
    1000 real digits under heavy noise."""
    real = mnist_test_images[:1000]
    if name in FIDELITY_ONLY:
        noisy = (real + torch.randn(real.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
        return real, noisy
    ones = mnist_test_images[mnist_test.labels == 1][:1000]
    return real, ones


@pytest.mark.parametrize("name", sorted(n for n, m in METRICS.items() if m.needs in ("classifier", "samples")
                                        and m.direction is not None))
def test_direction_holds_real_digits_beat_a_single_digit(name, mnist_test_images, mnist_test):
    real, ones = classifier_cases(mnist_test_images, mnist_test, name)
    reference = Reference._from_tensor(mnist_test_images[5000:6000], tuple(real.shape[1:]), 1000)
    good, bad = (METRICS[name].compute(MetricInputs(s, reference)) for s in (real, ones))
    assert (good > bad) if METRICS[name].direction == "higher" else (good < bad), (good, bad)


@pytest.mark.parametrize("name", sorted(n for n, m in METRICS.items() if m.needs == "energies"))
def test_energy_diagnostics_see_separation(name):
    """Diagnostics have no better side; they must still tell separated energies from overlapping ones."""
    real, fake, overlapping = torch.zeros(8), torch.full((8,), 2.0), torch.zeros(8)
    separated = METRICS[name].compute(MetricInputs(energy_real=real, energy_fake=fake))
    mixed = METRICS[name].compute(MetricInputs(energy_real=real, energy_fake=overlapping))
    assert separated != mixed or name == "energy_heldout_mean"


@pytest.mark.slow  # Inception on the CPU: a minute on 2 cores
def test_inception_metrics_known_values_and_direction(mnist_test_images, inception_weights, tmp_path):
    """FID of a set with itself is 0; real digits are closer to real digits than noise is; IS is exactly 1 with
    the shared weights, whose fc layer is zeroed (so IS has no direction to check here)."""
    real, other = mnist_test_images[:20], mnist_test_images[20:40]
    noise = torch.rand(20, 1, 32, 32) * 2 - 1
    reference = Reference._from_tensor(real, (1, 32, 32), 20)

    def scores(samples):
        inputs = MetricInputs(samples, reference, inception_weights=inception_weights,
                              inception_names=tuple(sorted(INCEPTION)), cache_dir=tmp_path)
        return {name: METRICS[name].compute(inputs) for name in sorted(INCEPTION)}

    same, close, far = scores(real), scores(other), scores(noise)
    assert same["fid"] == pytest.approx(0.0, abs=1e-2) and same["is"] == pytest.approx(1.0)
    assert same["is_std"] == pytest.approx(0.0, abs=1e-6)  # every split scores exactly 1 with a zeroed fc
    assert close["fid"] < far["fid"] and close["kid"] < far["kid"]
    assert math.isnan(far["kid_std"])  # KID's subsets of 20 are the whole sets of 20: no spread (KidSetting)
    for name in ("precision", "recall", "density", "coverage"):
        assert same[f"inception_{name}"] == pytest.approx(1.0 if name != "density" else same["inception_density"])
        assert close[f"inception_{name}"] > far[f"inception_{name}"], name
