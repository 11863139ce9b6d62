"""What a metric is: a name, which side is better, what it needs, and how it computes from a MetricInputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


# What a metric reads from its inputs:
# - "classifier": the pinned MNIST classifier's log-probabilities and features of the samples (and reference)
# - "inception": Inception-v3 statistics through torch-fidelity
# - "energies": D's energies of held-out real images and of generated images (an end-of-run diagnostic)
# - "samples": the raw generated images (and reference images)
NEEDS = ("classifier", "inception", "energies", "samples")
DIRECTIONS = ("higher", "lower", None)


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str | None  # "higher" or "lower" is better; None for a diagnostic with no better side
    needs: str  # one of NEEDS
    compute: Callable[[Any], float]  # f(MetricInputs) -> the score
    description: str = ""

    # NamedTuple-style unpacking, `direction, description = METRICS[name]`, as the first registry allowed
    def __iter__(self):
        return iter((self.direction, self.description))
