"""A packed step replayed as CUDA graphs, on a GPU, for methods whose step can be captured once."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..loop import PreparedRun


def uses_cuda_graphs(run: PreparedRun) -> bool:
    """Whether this run's packed steps replay as CUDA graphs: on a GPU, unless switched off, for methods whose step
    can be captured once (`Method.replayable`)."""
    return run.device.type == "cuda" and run.config.cuda_graphs and type(run.method).replayable


class StepGraphs:
    """The packed step as CUDA graphs, one per kind of step (with or without a G update).

    A kind runs eagerly for its first WARM_STEPS steps (on a side stream, as capture needs: cuBLAS handles and
    autograd's lazy set-up happen there), is captured on the next, and is replayed from then on. Capturing records
    without running, so the capture step is replayed at once. Inputs are the trainer's buffers, refilled before
    every step; outputs are the tensors the capture returned, rewritten by every replay.
    """

    WARM_STEPS = 2

    def __init__(self, device: torch.device):
        self.stream = torch.cuda.Stream(device)
        self.warm: dict[str, int] = {}
        self.captured: dict[str, tuple[torch.cuda.CUDAGraph, dict]] = {}

    def run(self, kind: str, compute: Callable[[], dict], eager: bool = False) -> dict:
        if kind in self.captured:
            graph, out = self.captured[kind]
            graph.replay()
            return out
        if eager or self.warm.get(kind, 0) < self.WARM_STEPS:
            self.warm[kind] = self.warm.get(kind, 0) + 1
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                out = compute()
            torch.cuda.synchronize()  # a few times per pack: the side stream's memory is then free to reuse
            return out
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = compute()
        graph.replay()
        self.captured[kind] = (graph, out)
        return out
