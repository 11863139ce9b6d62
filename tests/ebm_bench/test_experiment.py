"""Experiments declared before they run (ebm_bench.experiment, `ebm-bench experiment run|render`): the spec's
strict checks, tests and effect sizes reproduced with ebm_bench.stats (and SciPy) on hand-made record tables, the
family correction over exactly the declared hypotheses, a budget rule on a pilot, the declared-before/after header
from a temporary git repository, and one tiny real run."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ebm_bench import stats
from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.experiment import AFTER, BEFORE, analyse, declaration, declared_budget, load_experiment, render
from ebm_bench.experiment.analysis import plateau_start, rounded_budget
from ebm_bench.experiment.spec import pilot_runs
from ebm_bench.files import write_json
from ebm_bench.record import load_records, RESULT, SCHEMA_VERSION

MARGINS = (1.0, 2.0, 4.0)
# FID-MNIST per (margin, seed): margin 2 is best, 4 worst; no ties between the groups
FID = {(1.0, 0): 400.0, (1.0, 1): 420.0, (1.0, 2): 455.0, (2.0, 0): 150.0, (2.0, 1): 210.0, (2.0, 2): 180.0,
       (4.0, 0): 500.0, (4.0, 1): 470.0, (4.0, 2): 530.0}
RUNS = """
[runs]
methods = ["ebgan"]
seeds = [0, 1, 2]
[runs.set]
eval_every = 100
[runs.grid]
margin = [1, 2, 4]
"""
BUDGET = """
[budget]
steps = 300
"""
SCORE = """
[score]
metric = "fid_mnist"
"""
H1 = """
[[hypotheses]]
id = "H1"
statement = "margin 2 beats margin 1"
test = "mann_whitney"
a = { margin = 2 }
b = { margin = 1 }
direction = "a < b"
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment.toml"
    path.write_text(text)
    return path


def fake_run(records: Path, margin: float, seed: int, fid: float, curve: list[float] | None = None,
             created: str = "2030-01-01T00:00:00+00:00", status: str = "finished", steps: int = 300) -> dict:
    """A row shaped like `load_records` gives one, and its run folder: the record's JSON files and evaluation.csv."""
    run_dir = records / f"ebgan-mnist-seed{seed}-m{margin:g}-s{steps}"
    run_dir.mkdir(parents=True, exist_ok=True)
    curve = curve or [fid + 60.0, fid + 20.0, fid]
    pd.DataFrame({"step": [100 * (i + 1) for i in range(len(curve))], "fid_mnist": curve}).to_csv(
        run_dir / "evaluation.csv", index=False)
    budget = {"kind": "steps", "amount": steps}
    evaluation = {"fid_mnist": fid, "i_prime": 5.0 + seed} if status == "finished" else {}
    write_json(run_dir / "config.json", {"method": "ebgan", "dataset": "mnist", "seed": seed, "budget": budget,
                                         "method_options": {"margin": margin}, "eval_every": 100})
    write_json(run_dir / RESULT, {"schema_version": SCHEMA_VERSION, "run_id": run_dir.name, "run_dir": str(run_dir),
                                  "method": "ebgan", "dataset": "mnist", "seed": seed, "status": status,
                                  "budget": budget, "evaluation": evaluation})
    write_json(run_dir / "manifest.json", {"created": created})
    return {"config.method": "ebgan", "config.seed": seed, "config.method_options.margin": margin,
            "config.eval_every": 100, "config.budget.kind": "steps", "config.budget.amount": steps,
            "status": status, "evaluation.fid_mnist": evaluation.get("fid_mnist", np.nan),
            "evaluation.i_prime": evaluation.get("i_prime", np.nan), "manifest.created": created,
            "run_dir": str(run_dir)}


def records_table(folder: Path, fid=None, **kwargs) -> pd.DataFrame:
    fid = fid or FID
    return pd.DataFrame([fake_run(folder / "records", m, s, fid[(m, s)], **kwargs) for (m, s) in fid])


def scores(margin: float) -> list[float]:
    return [FID[(margin, s)] for s in range(3)]


# -- the spec is checked strictly ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("colour = 1\n" + RUNS + BUDGET + SCORE + H1, "unknown key 'colour' in the spec"),
    (RUNS + BUDGET + SCORE + H1.replace("mann_whitney", "t_test"), "has test 't_test'; known tests: mann_whitney"),
    (RUNS + BUDGET + SCORE + H1.replace("a = { margin = 2 }", "a = { margin = 3 }"),
     "a in [[hypotheses]] H1 (margin = 3) matches no declared run"),
    (RUNS + BUDGET + SCORE + H1.replace("a = { margin = 2 }", "a = { marginn = 2 }"),
     "names 'marginn', which no declared run sets"),
    (RUNS + BUDGET + SCORE + H1 + "tails = 1\n", "unknown key 'tails' in [[hypotheses]] H1 (test mann_whitney)"),
    (RUNS + BUDGET + SCORE + H1.replace("b = { margin = 1 }", "b = { margin = [1, 2] }"),
     "share 3 declared run(s); the groups must be disjoint"),
    (RUNS + BUDGET + SCORE + H1.replace("mann_whitney", "welch"), "test welch needs a number for every run"),
    (RUNS + BUDGET + SCORE + H1.replace('direction = "a < b"', 'direction = "down"'),
     "direction in [[hypotheses]] H1 must be one of a > b, a < b, a != b"),
    (RUNS + BUDGET + SCORE.replace("fid_mnist", "fid_mnits") + H1, "metric 'fid_mnits' is not a registered metric"),
    (RUNS + BUDGET + SCORE + 'statistic = "median"\n' + H1, "[score] statistic must be one of final, last_k_mean"),
    (RUNS.replace("eval_every = 100", "eval_every = 0") + BUDGET + SCORE + 'statistic = "auc"\n' + H1,
     "reads evaluation.csv, but declared runs of [[runs]]"),
    (RUNS + SCORE + H1, "declares no [budget]"),
    (RUNS.replace("[runs.set]", "steps = 5\n[runs.set]") + BUDGET + SCORE + H1,
     "sets a budget; declare it once, in [budget]"),
    (RUNS.replace("[runs.set]", 'data_root = "/data"\n[runs.set]') + BUDGET + SCORE + H1,
     "sets data_root, which belongs to the machine"),
    (RUNS + BUDGET + SCORE + H1 + H1.replace("hypotheses", "exploratory"), "the id 'H1' is given twice"),
    (RUNS + BUDGET + SCORE, "declares no hypotheses"),
    (RUNS + BUDGET + SCORE + H1 + '\n[[hypotheses]]\nid = "H2"\nstatement = "x"\ntest = "kruskal_wallis"\n'
     'by = "margin"\nwhere = { margin = 1 }\n', "by = 'margin' takes one value"),
    (RUNS.replace('[runs.grid]', 'sizeg = 3\n[runs.grid]') + BUDGET + SCORE + H1, "unknown key 'sizeg'"),
])
def test_a_bad_spec_is_one_line_naming_it(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


PILOT = """
[budget]
rule = "order_stable"
metric = "fid_mnist"
by = "margin"
[budget.pilot]
methods = ["ebgan"]
seeds = [SEEDS]
steps = 600
[budget.pilot.set]
eval_every = 100
[budget.pilot.grid]
margin = [1, 4]
"""


def test_a_pilot_sharing_seeds_with_the_main_runs_is_refused(tmp_path):
    path = write(tmp_path, RUNS + PILOT.replace("SEEDS", "2, 7") + SCORE + H1)
    with pytest.raises(ConfigError, match=r"the pilot's seeds 2 are also main runs' seeds \(0, 1, 2\)"):
        load_experiment(path)
    load_experiment(write(tmp_path, RUNS + PILOT.replace("SEEDS", "7") + SCORE + H1))  # disjoint: fine


def test_the_cli_prints_a_bad_spec_in_one_line(tmp_path, capsys):
    path = write(tmp_path, RUNS + BUDGET + SCORE + H1.replace("mann_whitney", "t_test"))
    assert main(["experiment", "render", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "t_test" in err and "Traceback" not in err
    assert main(["experiment", "render", str(tmp_path / "none.toml")]) == 2
    assert "experiment spec not found" in capsys.readouterr().err


# -- tests and effect sizes ----------------------------------------------------------------------------------------
FAMILY = H1 + """
[[hypotheses]]
id = "H2"
statement = "FID differs between the margins"
test = "kruskal_wallis"
by = "margin"

[[hypotheses]]
id = "H3"
statement = "margin 2 differs from margin 4 in mean"
test = "welch"
a = { margin = 2 }
b = { margin = 4 }
direction = "a != b"
score = { diverged = "exclude" }

[[exploratory]]
id = "E1"
statement = "a dip in log m"
test = "quadratic_trend"
x = "margin"
transform = "log"
direction = "dip"
score = { diverged = "exclude" }

[[exploratory]]
id = "E2"
statement = "margin 2 beats margin 1 by permutation"
test = "permutation"
a = { margin = 2 }
b = { margin = 1 }
direction = "a < b"
score = { diverged = "exclude" }
"""


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_the_correction_covers_exactly_the_declared_family(tmp_path, correction):
    experiment = load_experiment(write(tmp_path, f'correction = "{correction}"\n' + RUNS + BUDGET + SCORE + FAMILY))
    analysis = analyse(experiment, records_table(tmp_path))
    by_id = {r.hypothesis.id: r for r in analysis.results}
    family = np.array([by_id[i].p for i in ("H1", "H2", "H3")])
    expected = stats.holm(family) if correction == "holm" else stats.benjamini_hochberg(family)
    assert [by_id[i].p_adjusted for i in ("H1", "H2", "H3")] == pytest.approx(list(expected), rel=1e-12)
    # the exploratory analyses are in no family: not adjusted, no decision, and they do not change the family's
    for i in ("E1", "E2"):
        assert math.isnan(by_id[i].p_adjusted) and by_id[i].decision == "exploratory: no decision"
    with_all = stats.holm(np.array([r.p for r in analysis.results]))
    assert correction == "bh" or not np.allclose(with_all[:3], expected)
    assert all(by_id[i].decision == ("H0 rejected" if by_id[i].p_adjusted <= 0.05 else "H0 not rejected")
               for i in ("H1", "H2", "H3"))


def test_known_p_values_and_effect_sizes_are_reproduced(tmp_path):
    from scipy import stats as scipy_stats

    experiment = load_experiment(write(tmp_path, RUNS + BUDGET + SCORE + FAMILY))
    by_id = {r.hypothesis.id: r for r in analyse(experiment, records_table(tmp_path)).results}
    a, b, c = scores(2.0), scores(1.0), scores(4.0)
    # H1: exact Mann-Whitney, one-sided "a < b"; effect P(a < b) = P(b > a) with its bootstrap interval
    h1 = by_id["H1"]
    assert h1.method == "exact" and h1.p == pytest.approx(stats.mann_whitney_exact(a, b)["p_less"], rel=1e-12)
    assert h1.p == pytest.approx(scipy_stats.mannwhitneyu(a, b, alternative="less", method="exact").pvalue)
    assert h1.p == pytest.approx(1 / 20)  # 3 vs 3, every a below every b: 1 of C(6, 3) splits
    assert h1.effect == stats.probability_of_superiority(b, a) == 1.0
    assert (h1.effect_low, h1.effect_high) == stats.superiority_interval(b, a)
    assert h1.mean_difference == pytest.approx((np.mean(a) - np.mean(b), *stats.mean_difference_interval(a, b)))
    # H2: Kruskal-Wallis over the three margins
    h2 = by_id["H2"]
    assert h2.p == pytest.approx(stats.kruskal_wallis([b, a, c])["p"], rel=1e-12)
    assert h2.p == pytest.approx(scipy_stats.kruskal(b, a, c).pvalue, rel=1e-9)
    # H3: Welch's t, two-sided, with the difference of means and its interval
    h3 = by_id["H3"]
    t, p = stats.welch_t_test(np.mean(a), np.std(a, ddof=1), 3, np.mean(c), np.std(c, ddof=1), 3)
    assert (h3.statistic, h3.p) == pytest.approx((t, p), rel=1e-12)
    assert h3.p == pytest.approx(scipy_stats.ttest_ind(a, c, equal_var=False).pvalue, rel=1e-9)
    assert (h3.effect, h3.effect_low, h3.effect_high) == pytest.approx(
        (np.mean(a) - np.mean(c), *stats.mean_difference_interval(a, c)), rel=1e-12)
    # E1: the quadratic in log m, one-sided for a dip (c > 0)
    fit = stats.quadratic_trend(np.log([m for m in MARGINS for _ in range(3)]), [y for m in MARGINS for y in scores(m)])
    assert by_id["E1"].effect == pytest.approx(fit["c"]) and fit["c"] > 0
    assert by_id["E1"].p == pytest.approx(fit["p"] / 2, rel=1e-12)
    # E2: the exact permutation test of the mean difference
    assert by_id["E2"].p == pytest.approx(stats.permutation_test(a, b, alternative="less")["p_value"], rel=1e-12)


def test_mann_whitney_with_ties_is_the_exact_permutation_of_the_ranks(tmp_path):
    from scipy import stats as scipy_stats

    tied = dict(FID) | {(2.0, 0): 400.0}  # margin 2 seed 0 ties margin 1 seed 0
    experiment = load_experiment(write(tmp_path, RUNS + BUDGET + SCORE + H1))
    result = analyse(experiment, records_table(tmp_path, tied)).results[0]
    a, b = [tied[(2.0, s)] for s in range(3)], scores(1.0)
    assert result.method.startswith("exact permutation of the ranks")
    # SciPy: U's null over every split of the pooled values, ties included
    expected = scipy_stats.permutation_test((a, b), lambda x, y: scipy_stats.mannwhitneyu(x, y).statistic,
                                            permutation_type="independent", alternative="less", vectorized=False).pvalue
    ranks = stats.average_ranks(np.array(a + b))
    assert result.p == pytest.approx(stats.permutation_test(ranks[:3], ranks[3:], alternative="less")["p_value"])
    assert result.p == pytest.approx(expected)


def test_a_diverged_run_ranks_last_or_is_left_out(tmp_path):
    experiment = load_experiment(write(tmp_path, RUNS + BUDGET + SCORE + H1))
    records = records_table(tmp_path)
    records.loc[(records["config.method_options.margin"] == 2.0) & (records["config.seed"] == 0), "status"] = "diverged"
    result = analyse(experiment, records).results[0]
    # FID: lower is better, so the diverged run is the worst, ranked above every finite value (460 is such a value)
    assert result.groups[0].values.diverged == 1 and np.isinf(result.groups[0].values.values).sum() == 1
    assert result.p == pytest.approx(stats.mann_whitney_exact([460.0, 210.0, 180.0], scores(1.0))["p_less"])
    excluded = load_experiment(write(tmp_path / "x", RUNS + BUDGET + SCORE + 'diverged = "exclude"\n' + H1))
    result = analyse(excluded, records).results[0]
    assert result.n == "2 vs 3"
    assert result.p == pytest.approx(stats.mann_whitney_exact([210, 180], scores(1.0))["p_less"])


def test_a_curve_statistic_comes_from_evaluation_csv(tmp_path):
    text = RUNS + BUDGET + SCORE + 'statistic = "last_k_mean"\nlast_k = 2\n' + H1
    experiment = load_experiment(write(tmp_path, text))
    result = analyse(experiment, records_table(tmp_path)).results[0]
    # each fake curve is (fid + 60, fid + 20, fid): the mean of its last 2 is fid + 10
    assert list(result.groups[0].values.values) == [f + 10.0 for f in scores(2.0)]
    expected = stats.curve_statistics([100, 200, 300], [FID[(2.0, 0)] + d for d in (60, 20, 0)], "lower", 2)
    assert result.groups[0].values.values[0] == expected["last_k_mean"]


def test_shares_get_wilson_intervals_and_an_exact_test(tmp_path):
    text = RUNS + BUDGET + SCORE + H1 + """
[[exploratory]]
id = "S1"
statement = "margin 2 reaches FID 200 more often than margin 4"
test = "wilson_share"
threshold = 200
a = { margin = 2 }
b = { margin = 4 }
direction = "a > b"

[[exploratory]]
id = "S2"
statement = "margin 4 reaches FID 200 in under half its runs"
test = "wilson_share"
threshold = 200
a = { margin = 4 }
share0 = 0.5
direction = "a < share0"
"""
    analysis = analyse(load_experiment(write(tmp_path, text)), records_table(tmp_path))
    by_id = {r.hypothesis.id: r for r in analysis.results}
    s1, s2 = by_id["S1"], by_id["S2"]
    assert s1.groups[0].share == (2, 3) and s1.groups[1].share == (0, 3)  # FID <= 200: 150 and 180 of margin 2
    assert s1.effect == pytest.approx(2 / 3)
    assert s1.p == pytest.approx(stats.permutation_test([1, 1, 0], [0, 0, 0], alternative="greater")["p_value"])
    assert s2.effect == 0 and (s2.effect_low, s2.effect_high) == stats.wilson_interval(0, 3)
    assert s2.p == pytest.approx(0.5 ** 3)  # P(0 of 3 | share 0.5)


# -- records against the declaration -------------------------------------------------------------------------------
def test_records_are_matched_to_the_declared_runs(tmp_path):
    experiment = load_experiment(write(tmp_path, RUNS + BUDGET + SCORE + H1))
    records = records_table(tmp_path)
    other = fake_run(tmp_path / "records", 2.0, 0, 1.0, steps=600)  # another budget: not a declared run
    missing = records.drop(index=0)
    analysis = analyse(experiment, pd.concat([missing, pd.DataFrame([other])], ignore_index=True))
    assert len(analysis.matched.recorded) == len(FID) - 1 and analysis.matched.undeclared == 1
    # the record files behind the fake rows read back as the same table shape
    assert len(analyse(experiment, load_records([tmp_path / "records"])).matched.recorded) == len(FID)
    twice = pd.concat([records, records.iloc[[3]]], ignore_index=True)
    with pytest.raises(ConfigError, match="two records match one declared run"):
        analyse(experiment, twice)


def test_render_writes_the_analysis_beside_the_spec(tmp_path):
    experiment = load_experiment(write(tmp_path, RUNS + BUDGET + SCORE + FAMILY))
    render(experiment, records_table(tmp_path))
    markdown = (tmp_path / "analysis.md").read_text()
    assert "## Confirmatory hypotheses" in markdown and "## Exploratory analyses (not corrected" in markdown
    assert markdown.index("| E1 |") > markdown.index("## Exploratory")
    assert "e+" not in markdown
    table = pd.read_csv(tmp_path / "analysis.csv")
    assert list(table["kind"]) == ["confirmatory"] * 3 + ["exploratory"] * 2
    assert table["p_adjusted"].iloc[3:].isna().all() and table["p_adjusted"].iloc[:3].notna().all()


# -- a budget picked by a rule from the pilot ------------------------------------------------------------------------
def test_a_budget_rule_picks_the_step_from_the_pilot(tmp_path):
    experiment = load_experiment(write(tmp_path, RUNS + PILOT.replace("SEEDS", "7") + SCORE + H1))
    with pytest.raises(ConfigError, match="2 runs have no record"):
        declared_budget(experiment)
    # margin 1 leads at step 100, margin 4 from step 200 on: the order is stable from step 200
    curves = {1.0: [100.0, 300.0, 320.0, 330.0], 4.0: [200.0, 250.0, 240.0, 250.0]}
    for margin, curve in curves.items():
        fake_run(tmp_path / "pilot" / "records", margin, 7, curve[-1], curve=curve, steps=600)
    picked = declared_budget(experiment)
    assert picked.budget == {"steps": 200} and "order_stable" in picked.text
    analysis = analyse(experiment, records_table(tmp_path, steps=200))
    assert len(analysis.matched.recorded) == len(FID)  # the main runs at the budget the rule picked
    plateau = PILOT.replace('rule = "order_stable"', 'rule = "plateau"').replace('by = "margin"', "tolerance = 0.06")
    write(tmp_path, RUNS + plateau.replace("SEEDS", "7") + SCORE + H1)
    # the means 150, 275, 280, 290 are within 6% of 290 (17.4) from step 200 on, not within 5% (14.5)
    assert declared_budget(load_experiment(tmp_path / "experiment.toml")).budget == {"steps": 200}


PLATEAU = """
[budget]
rule = "plateau"
metric = "fid_mnist"
by = "margin"
tolerance = 0.05
[budget.pilot]
methods = ["ebgan"]
seeds = [7, 8]
steps = 600
[budget.pilot.set]
eval_every = 100
[budget.pilot.grid]
margin = [1, 4]
"""
# Two pilot runs per margin (steps 100 to 600); their means are margin 1: 400, 215, 205, 200, 201, 200 (within 5% of
# 200, i.e. 10, from step 300 on) and margin 4: 500, 400, 300, 250, 200, 195 (within 9.75 of 195 from step 500 on)
PLATEAU_CURVES = {(1.0, 7): [390.0, 220.0, 200.0, 205.0, 200.0, 195.0],
                  (1.0, 8): [410.0, 210.0, 210.0, 195.0, 202.0, 205.0],
                  (4.0, 7): [480.0, 420.0, 290.0, 260.0, 210.0, 190.0],
                  (4.0, 8): [520.0, 380.0, 310.0, 240.0, 190.0, 200.0]}


def pilot_records(folder: Path, curves: dict, **kwargs) -> None:
    for (margin, seed), curve in curves.items():
        fake_run(folder / "pilot" / "records", margin, seed, curve[-1], curve=curve, steps=600, **kwargs)


def test_a_plateau_per_level_picks_the_later_start(tmp_path):
    experiment = load_experiment(write(tmp_path, RUNS + PLATEAU + SCORE + H1))
    pilot_records(tmp_path, PLATEAU_CURVES)
    picked = declared_budget(experiment)
    starts = {p.level: (p.start, p.runs, p.diverged, p.still_moving) for p in picked.plateaus}
    assert starts == {1.0: (300.0, 2, 0, False), 4.0: (500.0, 2, 0, False)}
    assert picked.budget == {"steps": 500} and picked.set_by == 4.0
    assert "1 from step 300" in picked.text and "4 from step 500" in picked.text
    assert "the latest, 4's, sets the budget" in picked.text
    # the main runs are matched at the budget the rule picked, and the analysis shows each level's start
    markdown = render(experiment, records_table(tmp_path, steps=500)).experiment.folder / "analysis.md"
    assert "| 4 | 2 | 0 | 195 (step 600) | 500 | no | yes |" in markdown.read_text()
    assert "| 1 | 2 | 0 | 200 (step 600) | 300 | no |  |" in markdown.read_text()


def test_a_plateau_start_is_rounded_up_never_past_the_pilot(tmp_path):
    assert plateau_start(np.array([400.0, 215.0, 205.0, 200.0, 201.0, 200.0]), 0.05) == 2
    assert plateau_start(np.array([100.0, 50.0]), 0.05) == 1  # settles only at the last evaluation
    assert rounded_budget(300, 400, 600) == 400
    assert rounded_budget(17001, 500, 18750) == 17500 and rounded_budget(17000, 500, 18750) == 17000
    assert rounded_budget(18750, 500, 18750) == 18750  # 19,000 would be longer than any pilot run
    write(tmp_path, RUNS + PLATEAU.replace("tolerance = 0.05", "tolerance = 0.05\nround_up = 400") + SCORE + H1)
    pilot_records(tmp_path, PLATEAU_CURVES)
    assert declared_budget(load_experiment(tmp_path / "experiment.toml")).budget == {"steps": 600}  # 800, capped


def test_a_level_still_moving_gives_the_pilots_budget_and_diverged_runs_are_counted(tmp_path):
    experiment = load_experiment(write(tmp_path, RUNS + PLATEAU + SCORE + H1))
    moving = dict(PLATEAU_CURVES)
    moving[(4.0, 7)] = [480.0, 420.0, 290.0, 260.0, 240.0, 190.0]  # margin 4's mean 220 at step 500: 25 from 195
    pilot_records(tmp_path, moving)
    picked = declared_budget(experiment)
    assert picked.budget == {"steps": 600} and picked.set_by == 4.0
    assert "4 mean curve was still moving at the last evaluation (600)" in picked.text
    fake_run(tmp_path / "pilot" / "records", 1.0, 8, 205.0, curve=[9e9] * 6, steps=600, status="diverged")
    picked = declared_budget(experiment)  # margin 1's mean is seed 7's alone: within 9.75 of 195 from step 500
    assert {p.level: (p.runs, p.diverged, p.start) for p in picked.plateaus}[1.0] == (1, 1, 500.0)
    assert "1 diverged pilot run(s) left out" in picked.text
    for seed in (7, 8):
        fake_run(tmp_path / "pilot" / "records", 4.0, seed, 1.0, curve=[1.0] * 6, steps=600, status="diverged")
    with pytest.raises(ConfigError, match="every pilot run with margin = 4 diverged") as caught:
        declared_budget(experiment)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("change, message", [
    (('by = "margin"', 'by = "colour"'), "[budget] by = 'colour' is no setting of the pilot's runs"),
    (("margin = [1, 4]", "margin = [4]"), "by = 'margin' takes fewer than 2 values over the pilot's runs"),
    (("tolerance = 0.05", "tolerance = 0.05\nround_up = 0"), "round_up must be a whole number of steps >= 1"),
    (("tolerance = 0.05", "tolerance = 0.05\nlag = 2"), "unknown key 'lag' in [budget] (rule plateau)"),
])
def test_a_bad_plateau_rule_is_one_line(tmp_path, change, message):
    with pytest.raises(ConfigError) as caught:
        load_experiment(write(tmp_path, RUNS + PLATEAU.replace(*change) + SCORE + H1))
    assert message in str(caught.value) and "\n" not in str(caught.value)


PILOT_ONLY = """
[budget]
rule = "plateau"
metric = "fid_mnist"
by = "margin"
tolerance = 0.05
[[budget.pilot]]
name = "low"
records = "records"
methods = ["ebgan"]
seeds = [7, 8]
steps = 600
set = { eval_every = 100, margin = 1 }
[[budget.pilot]]
name = "high"
records = "records"
methods = ["ebgan"]
seeds = [7, 8]
steps = 600
set = { eval_every = 100, margin = 4 }
"""


def test_a_pilot_only_spec_of_several_sweeps_picks_and_renders_its_budget(tmp_path):
    experiment = load_experiment(write(tmp_path, PILOT_ONLY))
    assert experiment.pilot_only and [p.name for p in experiment.rule.pilots] == ["low", "high"]
    assert experiment.rule.records == tmp_path / "records"
    for (margin, seed), curve in PLATEAU_CURVES.items():
        fake_run(tmp_path / "records", margin, seed, curve[-1], curve=curve, steps=600)
    analysis = render(experiment)
    assert analysis.budget.budget == {"steps": 500} and analysis.results == []
    markdown = (tmp_path / "analysis.md").read_text()
    assert "budget pilot" in markdown and "4 declared runs in 2 sweep(s) (low, high)" in markdown
    assert "| 4 | 2 | 0 | 195 (step 600) | 500 | no | yes |" in markdown


def test_a_pilot_only_spec_plans_with_the_campaign_flags(tmp_path, capsys):
    """make.sh --campaign passes benchmarks/gpu.sh's flags (--no-plots among them) to `experiment run`."""
    path = write(tmp_path, PILOT_ONLY)
    assert main(["experiment", "run", str(path), "--dry-run", "--no-plots", "--device", "cpu",
                 "--out", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out
    assert out.count("2 runs (1 grid point") == 2 and "budget: picked by rule plateau once the pilot has run\n" in out


@pytest.mark.parametrize("text, message", [
    (PILOT_ONLY + SCORE, "declares score but no [[runs]]: a spec with a budget rule and no main runs is a pilot"),
    (PILOT_ONLY.replace('records = "records"', 'records = "other"', 1), "groups name different records folders"),
    (PILOT_ONLY.replace('name = "high"', 'name = "low"'), "two [[budget.pilot]] groups share a name"),
    (PILOT_ONLY.replace("margin = 4", "margin = 1").replace("seeds = [7, 8]", "seeds = [8, 9]", 1),
     "[[budget.pilot]] groups low and high declare the same run twice"),
])
def test_a_bad_pilot_only_spec_is_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_experiment(write(tmp_path, text))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_budget_pilot_declares_its_readme_runs():
    """leaderboards/mnist-budget-pilot/experiment.toml: 32 EBGAN + 36 GAN configurations (3 per optimiser setting) x
    seeds 100-102, 18,750 steps, eval every 500; the rule: the later of the two frameworks' plateaus."""
    spec = Path(__file__).resolve().parents[2] / "leaderboards" / "mnist-budget-pilot" / "experiment.toml"
    experiment = load_experiment(spec)
    runs = pilot_runs(experiment, {})
    assert experiment.pilot_only and len(experiment.rule.pilots) == 13 and len(runs) == 204
    assert set(runs["seed"]) == {100, 101, 102} and set(runs["steps"]) == {18750} and set(runs["eval_every"]) == {500}
    configs = runs.drop(columns=["seed", "group"]).drop_duplicates()
    assert configs["method"].value_counts().to_dict() == {"gan": 36, "ebgan": 32}
    gan = configs[configs["method"] == "gan"]
    assert set(gan.groupby(["optimizer_d", "optimizer_g", "lr"]).size()) == {3} and len(gan) == 36
    rule = experiment.rule
    assert (rule.rule, rule.metric, rule.by, rule.tolerance, rule.round_up) == ("plateau", "fid_mnist", "method",
                                                                                0.05, 500)


# -- declared before or after the runs -----------------------------------------------------------------------------
def _git(folder: Path, *args: str, date: str | None = None) -> None:
    env = os.environ | {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"}
    if date:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)


def test_the_header_says_whether_the_spec_was_declared_before_the_runs(tmp_path):
    folder = tmp_path / "repo" / "leaderboards" / "exp"
    path = write(folder, RUNS + BUDGET + SCORE + H1)
    records = records_table(folder, created="2030-01-02T00:00:00+00:00")
    assert declaration(path, records["manifest.created"]).label == AFTER  # not in a git repository
    _git(tmp_path / "repo", "init", "-q")
    assert "no commit" in render(load_experiment(path), records).declaration.header()
    _git(tmp_path / "repo", "add", str(path))
    _git(tmp_path / "repo", "commit", "-q", "-m", "declare", date="2030-01-01T00:00:00+00:00")
    analysis = render(load_experiment(path), records)
    assert analysis.declaration.label == BEFORE and BEFORE in (folder / "analysis.md").read_text()
    assert "all 9 runs were created after it" in analysis.declaration.reason
    early = records_table(folder, created="2029-12-31T23:00:00+00:00")
    analysis = render(load_experiment(path), early)
    assert analysis.declaration.label == AFTER and "9 of 9 runs were created before it" in analysis.declaration.reason
    assert f"**{AFTER}**" in (folder / "analysis.md").read_text()
    assert (pd.read_csv(folder / "analysis.csv")["declared"] == AFTER).all()
    path.write_text(path.read_text() + "\n# changed\n")  # changed since its commit: not what was declared
    assert "changes not committed" in declaration(path, records["manifest.created"]).reason
    assert declaration(path, records["manifest.created"]).label == AFTER


# -- a tiny real experiment ----------------------------------------------------------------------------------------
REAL = """
[runs]
methods = ["ebgan", "gan"]
seeds = [0]
batch_size = 16
holdout = 100
eval_n = 50
[runs.set]
n_layer_g = 3
size_g = 16
size_d = 16
z_dim = 8
eval_every = 1
eval_every_n = 16
[budget]
steps = 2
[score]
metric = "i_prime"
statistic = "last_k_mean"
last_k = 2
[[hypotheses]]
id = "H1"
statement = "EBGAN's I' differs from GAN's"
test = "mann_whitney"
a = { method = "ebgan" }
b = { method = "gan" }
direction = "a != b"
"""


def test_experiment_run_trains_the_declared_runs_and_render_tests_them(tmp_path, mnist_root, capsys):
    path = write(tmp_path / "exp", REAL)
    machine = ["--data-root", str(mnist_root), "--no-download", "--threads", "1"]
    scratch = tmp_path / "scratch"
    assert main(["experiment", "run", str(path), "--out", str(scratch), *machine]) == 0
    assert "commit the spec before training" in capsys.readouterr().err  # not in a git repository
    records = tmp_path / "exp" / "records"
    runs = sorted(p.name for p in records.iterdir())
    assert len(runs) == 2 and all((records / r / RESULT).is_file() for r in runs)
    assert not list(records.rglob("checkpoint.pt")) and list(scratch.rglob("checkpoint.pt"))
    stamp = [(records / r / RESULT).stat().st_mtime_ns for r in runs]
    assert main(["experiment", "run", str(path), "--out", str(scratch), *machine]) == 0  # resumes: nothing to do
    assert [(records / r / RESULT).stat().st_mtime_ns for r in runs] == stamp
    capsys.readouterr()
    assert main(["experiment", "render", str(path)]) == 0
    table = pd.read_csv(tmp_path / "exp" / "analysis.csv")
    assert list(table["id"]) == ["H1"] and table["n"].iloc[0] == "1 vs 1"
    assert "H1 (confirmatory)" in capsys.readouterr().out


def test_time_limit_is_one_deadline_for_every_sweep_of_the_experiment(tmp_path, monkeypatch, capsys):
    import ebm_bench.cli.experiment as command

    seen = []
    monkeypatch.setattr(command, "sweep_main", lambda args, plan, name, source: seen.append(args.time_limit) or 0)
    path = write(tmp_path, RUNS.replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nname = \"main\"")
                 + BUDGET + SCORE + H1)
    assert main(["experiment", "run", str(path), "--dry-run", "--time-limit", "10m"]) == 0
    assert len(seen) == 1 and seen[0] > 0  # a deadline in Unix seconds, parsed once
    assert main(["experiment", "run", str(path), "--time-limit", "soon"]) == 2
    assert "--time-limit 'soon' is not a time limit" in capsys.readouterr().err


def test_the_worked_example_declares_the_committed_margin_runs(tmp_path):
    """leaderboards/mnist-margin-sensitivity/experiment.toml: its 24 declared runs are the 24 committed records, and
    its Kruskal-Wallis on FID-MNIST is the one computed from those records directly."""
    folder = Path(__file__).resolve().parents[2] / "leaderboards" / "mnist-margin-sensitivity"
    experiment = load_experiment(folder / "experiment.toml")
    records = load_records([folder / "records"])
    analysis = analyse(experiment, records)
    assert len(analysis.matched.runs) == len(analysis.matched.recorded) == 24 and analysis.matched.undeclared == 0
    by_margin = records.groupby("config.method_options.margin")["evaluation.fid_mnist"]
    h1 = next(r for r in analysis.results if r.hypothesis.id == "H1")
    assert h1.p == pytest.approx(stats.kruskal_wallis([g.to_numpy() for _, g in by_margin])["p"], rel=1e-12)
    assert [r.hypothesis.id for r in analysis.confirmatory] == ["H1", "H2"]
    assert all(r.hypothesis.exploratory for r in analysis.results[2:])


GROUPS = """
[[runs]]
name = "ebgan-margins"
methods = ["ebgan"]
seeds = [0, 1]
[runs.grid]
margin = [1, 2, 4]

[[runs]]
name = "gans"
methods = ["gan"]
seeds = [0, 1, 2]
sample = 1
[runs.grid]
lr = [0.001, 0.0001]
""" + BUDGET + SCORE + """
[[hypotheses]]
id = "H1"
statement = "EBGAN beats GAN"
test = "mann_whitney"
a = { method = "ebgan" }
b = { method = "gan" }
direction = "a < b"
"""


def test_several_groups_declare_the_runs_together(tmp_path):
    experiment = load_experiment(write(tmp_path, GROUPS))
    declared = experiment.declared
    assert list(declared.groupby("group").size().items()) == [("ebgan-margins", 6), ("gans", 3)]
    assert declared.loc[declared["group"] == "gans", "lr"].nunique() == 1  # sample = 1 of the 2 grid points
    with pytest.raises(ConfigError, match="two \\[\\[runs\\]\\] groups share a name"):
        load_experiment(write(tmp_path, GROUPS.replace('"gans"', '"ebgan-margins"')))
    twice = GROUPS.replace('methods = ["gan"]\nseeds = [0, 1, 2]\nsample = 1\n[runs.grid]\nlr = [0.001, 0.0001]',
                           'methods = ["ebgan"]\nseeds = [1]\n[runs.grid]\nmargin = [4]')
    with pytest.raises(ConfigError, match="declare the same run twice"):
        load_experiment(write(tmp_path, twice))


def test_render_warns_of_declared_runs_without_a_record(tmp_path, capsys):
    path = write(tmp_path, RUNS + BUDGET + SCORE + H1)
    fake_run(tmp_path / "records", 2.0, 0, 150.0)
    assert main(["experiment", "render", str(path)]) == 0
    assert "warning: 8 of 9 declared runs have no record" in capsys.readouterr().err
    assert "9 declared, 1 recorded" in (tmp_path / "analysis.md").read_text()


def test_a_score_may_come_from_a_per_run_table_beside_the_spec(tmp_path):
    """source = "table": a probe's CSV (rows by run_id) scores each run by the mean of its rows' column; the test
    then runs on those values as on any score."""
    records = records_table(tmp_path)
    rows = []
    for _, run in records.iterrows():  # two rows per run; margin 2's runs rank corruptions best
        margin, seed = run["config.method_options.margin"], run["config.seed"]
        value = 0.9 if margin == 2.0 else 0.6
        rows += [{"run_id": Path(run["run_dir"]).name, "auroc": value + 0.01 * seed + d} for d in (-0.05, 0.05)]
    pd.DataFrame(rows).to_csv(tmp_path / "probe.csv", index=False)
    table_score = '[score]\nmetric = "auroc"\nsource = "table"\ntable = "probe.csv"\ndirection = "higher"\n'
    hypothesis = H1.replace('direction = "a < b"', 'direction = "a > b"')
    experiment = load_experiment(write(tmp_path, RUNS + BUDGET + table_score + hypothesis))
    (result,) = analyse(experiment, records).results
    assert result.p == pytest.approx(0.05)  # 3 against 3, every margin-2 run above: 1 / C(6, 3)
    assert "mean of the run's rows in probe.csv" in experiment.score.describe()
    for text, message in [
        (table_score.replace('table = "probe.csv"\n', ""), 'give table = "FILE.csv"'),
        (table_score.replace("probe.csv", "nowhere.csv"), "nowhere.csv does not exist"),
        (table_score.replace('direction = "higher"\n', ""), "has no better side; add direction"),
        (SCORE + 'table = "probe.csv"\n', 'table is for source = "table"'),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_experiment(write(tmp_path, RUNS + BUDGET + text + hypothesis))
