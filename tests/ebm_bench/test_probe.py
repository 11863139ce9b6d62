"""The energy probe: corruptions with known effects, and the AUROC/Spearman table on a hand-made energy."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ebm_bench.errors import ConfigError
from ebm_bench.cli import main
from ebm_bench.probe import BASELINE, CORRUPTIONS, baseline, corrupt, probe, probe_markdown, probe_runs, summarise_probe


def digit() -> torch.Tensor:
    """A 32x32 "digit": background -1, a 12x4 bar of ink (+1)."""
    image = torch.full((1, 1, 32, 32), -1.0)
    image[..., 10:22, 14:18] = 1.0
    return image


def test_corruptions_have_their_stated_effect():
    g = torch.Generator().manual_seed(0)
    x = digit()
    assert torch.equal(corrupt(x, "invert", 1.0, g), -x)
    assert torch.equal(corrupt(x, "invert", 0.5, g), torch.zeros_like(x))
    assert torch.equal(corrupt(x, "mask", 0.0, g), x)
    assert torch.equal(corrupt(x, "mask", 1.0, g), torch.full_like(x, -1.0))
    noisy = corrupt(x.expand(64, -1, -1, -1), "noise", 0.4, g)
    assert noisy.min() >= -1 and noisy.max() <= 1
    interior = noisy[..., 0:8, 0:8] + 1.0  # background clamps from below: mean of max(0, N(0, 0.4)) = 0.4 / sqrt(2 pi)
    assert interior.mean().item() == pytest.approx(0.4 / (2 * torch.pi) ** 0.5, rel=0.05)
    turned = corrupt(x, "rotate", 90.0, g)  # the vertical bar lies down
    assert torch.equal(turned[..., 14:18, 10:22], torch.ones(1, 1, 4, 12))
    assert torch.equal(corrupt(x, "rotate", 180.0, g), x)  # the bar is centred, so a half turn keeps it
    with pytest.raises(ConfigError, match="unknown corruption 'blur'"):
        corrupt(x, "blur", 1.0, g)


class Ink(nn.Module):
    """A "discriminator" that reconstructs the empty background: its energy is the squared ink of an image."""

    def forward(self, x):
        return torch.full_like(x, -1.0)


def test_probe_on_an_energy_that_counts_ink():
    method = SimpleNamespace(energy=lambda images, out: ((images - out) ** 2).flatten(1).sum(1))
    run = SimpleNamespace(config=SimpleNamespace(batch_size=8), discriminator=Ink(), method=method)
    table = probe(run, digit().expand(16, -1, -1, -1).clone())
    assert len(table) == sum(len(v) for v in CORRUPTIONS.values())
    by = table.set_index(["corruption", "severity"])
    assert by.loc[("invert", 1.0), "auroc"] == 1.0  # the negative is all ink
    assert by.loc[("invert", 0.5), "energy_corrupted"] == 32 * 32  # grey: (0 + 1)^2 on every pixel
    assert by.loc[("invert", 0.5), "energy_clean"] == 48 * 4  # 48 ink pixels at (1 + 1)^2
    assert by.loc[("mask", 0.5), "auroc"] == 0.0  # masking removes ink: every masked copy is below the clean ones
    assert by.loc[("rotate", 180.0), "auroc"] == 0.5  # the same image: ties count half
    mask = table[table["corruption"] == "mask"]
    assert (mask["spearman"] < -0.8).all() and mask["spearman"].nunique() == 1
    assert (table[table["corruption"] == "invert"]["spearman"] > 0.8).all()


def test_the_baseline_is_the_distance_to_the_mean_digit():
    # with a mean of all zeros the energy is the image's norm: the negative has the same norm, so every pair ties
    table = probe(baseline(torch.zeros(1, 32, 32), 8), digit().expand(16, -1, -1, -1).clone())
    by = table.set_index(["corruption", "severity"])
    assert by.loc[("invert", 1.0), "auroc"] == 0.5
    assert by.loc[("invert", 1.0), "energy_clean"] == pytest.approx(32.0)  # every pixel is +-1: sqrt(1024)


def test_probe_runs_reads_a_trained_run_and_the_summary_renders(report_runs, tmp_path, capsys):
    run_dirs = sorted(d for d in Path(report_runs).iterdir() if d.name.startswith("ebgan-"))
    table = probe_runs(run_dirs, n=64)
    assert set(table["method"]) == {"ebgan", BASELINE} and len(table) == 16 * 3
    assert table["auroc"].between(0, 1).all() and table["spearman"].between(-1, 1).all()
    assert table.loc[table["method"] == "ebgan", "energy_auroc_generated"].notna().all()
    summary = summarise_probe(table).set_index(["method", "corruption", "severity"])
    pair = table[(table["method"] == "ebgan") & (table["corruption"] == "noise") & (table["severity"] == 0.8)]
    assert summary.loc[("ebgan", "noise", 0.8), "runs"] == 2
    assert summary.loc[("ebgan", "noise", 0.8), "auroc"] == pytest.approx(pair["auroc"].mean())
    assert "| ebgan | 2 |" in probe_markdown(summary.reset_index())
    table.to_csv(tmp_path / "probe.csv", index=False)
    assert main(["probe", "--table", str(tmp_path / "probe.csv"), "--summary", str(tmp_path / "s")]) == 0
    assert {p.name for p in (tmp_path / "s").iterdir()} >= {"summary.md", "summary.csv", "probe.png"}
    assert main(["probe"]) == 2 and "probe takes run folders" in capsys.readouterr().err


def test_a_run_without_checkpoint_is_named(tmp_path):
    with pytest.raises(ConfigError, match="has no checkpoint.pt"):
        probe_runs([tmp_path], n=8)
