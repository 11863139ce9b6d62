"""What a metric is: one descriptor holding every fact about it. Its name, which side is better, what it needs, how
it computes from a MetricInputs, whether it is scored over training, where it shows in tables and figures, where it
ranks by default, and what its provenance adds to a record. Everything else (evaluation, leaderboards, plots, the
report) reads these facts from the registered metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


# What a metric reads from its inputs:
# - "classifier": the pinned MNIST classifier's log-probabilities and features of the samples (and reference)
# - "inception": Inception-v3 statistics through torch-fidelity
# - "energies": D's energies of held-out real images and of generated images (an end-of-run diagnostic)
# - "samples": the raw generated images (and reference images)
# - "classes": D's class logits of the dataset's labelled test set, and its labels (semi-supervised runs)
NEEDS = ("classifier", "inception", "energies", "samples", "classes")
DIRECTIONS = ("higher", "lower", None)


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str | None  # "higher" or "lower" is better; None for a diagnostic with no better side
    needs: str  # one of NEEDS
    compute: Callable[[Any], float]  # f(MetricInputs) -> the score
    description: str = ""
    # cheap enough to score every --eval-every steps into evaluation.csv (the classifier's scores; not Inception)
    over_training: bool = False
    # its place among the scores a reader sees first (a table's headline columns, figures' panels); None: not shown
    headline: int | None = None
    # its place in the default ranking (the first a table holds ranks it); None: ranks only when asked for
    ranking: int | None = None
    # the provenance fields its score adds to a record beside N and the weights' hashes (see metrics.provenance)
    provenance: tuple[str, ...] = ()
    # what a narrow table calls it (the end-of-run summary); its name where empty
    label: str = ""
