"""The framework floor: what forward + backward costs when the kernels do (almost) nothing.

    python -m normlayers.bench --floor [--threads 1 --timer cpu]

At the smallest shapes nn.BatchNorm2d is one fused kernel of a few microseconds; the
rest of its time is framework: the module call, one operator dispatch, one C++ autograd
node, the backward dispatch, two AccumulateGrad nodes. BGN cannot beat the same call
sequence doing nothing, so each row compares (microseconds per forward + backward):

- ``BN``: nn.BatchNorm2d on the shape; ``BN 1x1``: the same layer on N x C x 1 x 1
  (every call the same, almost no data);
- ``BGN``: the layer as shipped (native kernel); ``BGN noop``: the same layer, same
  Python, same operator signature, autograd node and allocations, whose C++ forward and
  backward compute nothing (``bgn_noop`` in csrc/bgn_cpu.cpp): BGN's floor;
- ``BGN tiny``: the shipped layer on N x C x h x h, the smallest maps with the same
  group/channel layout: the native call's fixed cost;
- ``eager`` and ``eager tiny``: the same two for the ATen-operator paths BGN used before;
- ``py Function``: a module whose Python autograd Function returns empty tensors: the
  floor of any Python-level fused BGN (the route tried before the native kernel).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
from torch import nn

from . import create_norm
from .bench import Contender, Shape, bench_inputs, interleaved_medians

FLOOR_SHAPES: list[Shape] = [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8), (8, 32, 16, 16), (8, 64, 8, 8)]
FLOOR_GROUPS = [1, 16, 256]
COLUMNS = ["BN", "BN 1x1", "BGN", "BGN noop", "BGN tiny", "eager", "eager tiny", "py Function"]


class _EmptyFunction(torch.autograd.Function):
    """Forward and backward that allocate their results and compute nothing."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[override]
        ctx.save_for_backward(x, weight, bias)
        return torch.empty_like(x)

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, weight, bias = ctx.saved_tensors
        return torch.empty_like(x), torch.empty_like(weight), torch.empty_like(bias)


class PythonFunctionNoop(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _EmptyFunction.apply(x, self.weight, self.bias)


def tiny_shape(shape: Shape, groups: int) -> Shape:
    """N x C x h x h with the smallest h whose layout has the same group/channel structure."""
    n, c = shape[:2]
    h = 1
    while (c * h * h) % groups:
        h += 1
    return (n, c, h, h)


def floor_row(shape: Shape, groups: int, rounds: int, budget_s: float, timer: Callable[[], float]) -> dict[str, float]:
    """Microseconds per forward + backward of every COLUMNS entry at (shape, G)."""
    n, c = shape[:2]
    bgn = create_norm(f"bgn:num_groups={groups}", c).train()
    x, grad = bench_inputs(shape, "cpu")
    tiny = bench_inputs(tiny_shape(shape, groups), "cpu")
    bn = nn.BatchNorm2d(c)
    contenders = [
        Contender("BN", bn),
        Contender("BN 1x1", bn, inputs=bench_inputs((n, c, 1, 1), "cpu")),
        Contender("BGN", bgn),
        Contender("BGN noop", bgn, "noop"),
        Contender("BGN tiny", bgn, inputs=tiny),
        Contender("eager", bgn, "eager"),
        Contender("eager tiny", bgn, "eager", inputs=tiny),
        Contender("py Function", PythonFunctionNoop(c)),
    ]
    med = interleaved_medians(contenders, x, grad, rounds, budget_s, timer)
    return {k: v * 1e6 for k, v in med.items()}


def format_floor(rows: list[tuple[Shape, int, dict[str, float]]]) -> str:
    lines = ["| N x C x H x W | G | " + " | ".join(f"{c} us" for c in COLUMNS) + " | BGN / BN | noop / BN 1x1 |",
             "|---|---:|" + "---:|" * (len(COLUMNS) + 2)]
    for shape, g, us in rows:
        cells = " | ".join(f"{us[c]:.1f}" for c in COLUMNS)
        lines.append(f"| {'x'.join(map(str, shape))} | {g} | {cells} | {us['BGN'] / us['BN']:.2f} | "
                     f"{us['BGN noop'] / us['BN 1x1']:.2f} |")
    return "\n".join(lines)


def run_floor(rounds: int, budget_s: float, timer: Callable[[], float], timer_name: str, json_path: str | None) -> int:
    print(f"# microseconds per forward+backward, cpu, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{timer_name} time; median of {rounds} interleaved rounds", flush=True)
    rows = []
    for shape in FLOOR_SHAPES:
        for g in FLOOR_GROUPS:
            if g == shape[1]:
                continue
            rows.append((shape, g, floor_row(shape, g, rounds, budget_s, timer)))
            table = format_floor(rows[-1:]).splitlines()
            print("\n".join(table if len(rows) == 1 else table[2:]), flush=True)
    if json_path:
        with open(json_path, "w") as fh:
            json.dump([{"shape": s, "groups": g, "us": us} for s, g, us in rows], fh, indent=1)
    return 0
