"""Packed training: K runs of one shape trained as one stacked model, each as it would train alone.

Runs pack together when they share everything but what `pack_key` leaves out: seed, float method options
(margin, gamma, lambda_k, pt_weight, ...) and their schedules, learning rates and betas, dropout on or off, and
evaluation settings. The pieces:
- plan: the pack key, --pack, packs planned from a list of runs;
- stacked: K modules' parameters in one flat (K, P) buffer, and the optimiser stepping each run's row;
- graphs: the packed step as CUDA graphs on a GPU;
- step: the packed step the training loop (ebm_bench.loop) drives, as it drives a run's solo step.
"""

from .graphs import StepGraphs, uses_cuda_graphs
from .plan import AUTO_PACK, describe_packs, pack_key, pack_size, parse_pack, plan_packs
from .stacked import StackedNet, StackedOptimizer
from .step import PackedStep, PackedTrainer

__all__ = ["AUTO_PACK", "PackedStep", "PackedTrainer", "StackedNet", "StackedOptimizer", "StepGraphs",
           "describe_packs", "pack_key", "pack_size", "parse_pack", "plan_packs", "uses_cuda_graphs"]
