"""Speed of every normalization relative to ``nn.BatchNorm2d``, side by side in one process.

    python -m normlayers.bench                 # ResNet-like shapes, batch 2..128
    python -m normlayers.bench --quick         # a few shapes, for a smoke run
    python -m normlayers.bench --norms bn bgn:num_groups=4 --batches 2 32

For each shape, every layer runs forward + backward (train mode) on the same
input and output gradient. Timings are interleaved (round r times every layer
once before round r+1 starts) and the median over rounds is kept, so a noisy
neighbour on a shared machine slows every layer alike; the table reports each
layer's time as a ratio to BatchNorm2d's, plus BN's own time for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from . import create_norm, list_norms, resolve_norm

# (channels, spatial size) of CIFAR ResNet stages and ImageNet ResNet stages.
RESNET_SHAPES = [(16, 32), (32, 16), (64, 8), (64, 56), (128, 28), (256, 14)]
BATCHES = [2, 8, 32, 128]
DEFAULT_EXTRA = ["bgn:num_groups=16", "bgn:num_groups=256"]


@dataclass
class Row:
    shape: tuple[int, int, int, int]
    bn_ms: float
    ratios: dict[str, float]


def _time_once(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor, iters: int) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        layer(x).backward(grad)
    sync()
    return (time.perf_counter() - start) / iters


def bench_shape(specs: list[str], shape: tuple[int, int, int, int], device: str, rounds: int, budget_s: float) -> Row:
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_(True)
    grad = torch.randn(shape, generator=gen).to(device)
    layers = {"bn": nn.BatchNorm2d(c).to(device)}
    layers.update({s: create_norm(s, c).to(device).train() for s in specs})
    for layer in layers.values():  # warm up (allocator, lazy init) and estimate cost
        _time_once(layer, x, grad, 2)
    per_call = _time_once(layers["bn"], x, grad, 3)
    iters = max(1, int(budget_s / max(per_call, 1e-6) / rounds / len(layers)))
    samples: dict[str, list[float]] = {k: [] for k in layers}
    for _ in range(rounds):
        for key, layer in layers.items():
            samples[key].append(_time_once(layer, x, grad, iters))
    med = {k: statistics.median(v) for k, v in samples.items()}
    return Row(shape, med["bn"] * 1e3, {k: med[k] / med["bn"] for k in specs})


def format_table(rows: list[Row], specs: list[str]) -> str:
    labels = [resolve_norm(s).label for s in specs]
    head = "| N x C x H x W | BN ms | " + " | ".join(labels) + " |"
    sep = "|---|---:|" + "---:|" * len(specs)
    lines = [head, sep]
    for r in rows:
        shape = "x".join(map(str, r.shape))
        cells = " | ".join(f"{r.ratios[s]:.2f}" for s in specs)
        lines.append(f"| {shape} | {r.bn_ms:.3f} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m normlayers.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--norms", nargs="+", default=None, help="specs to time (default: every registered norm + a BGN G grid)")
    parser.add_argument("--batches", nargs="+", type=int, default=BATCHES)
    parser.add_argument("--quick", action="store_true", help="three small shapes, short timing")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per shape")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    specs = args.norms or [n for n in list_norms() if n not in ("bn", "none")] + DEFAULT_EXTRA
    specs = [str(resolve_norm(s).spec) for s in specs]
    shapes = [(b, c, s, s) for b in args.batches for c, s in RESNET_SHAPES]
    if args.quick:
        shapes = [(2, 16, 32, 32), (8, 64, 8, 8), (32, 32, 16, 16)]
        args.rounds, args.budget = 3, 0.3
    print(f"# forward+backward time / nn.BatchNorm2d, {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.rounds} interleaved rounds", flush=True)
    rows = []
    for shape in shapes:
        rows.append(bench_shape(specs, shape, args.device, args.rounds, args.budget))
        print(format_table(rows[-1:], specs).splitlines()[-1] if rows[:-1] else format_table(rows, specs), flush=True)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump([{"shape": r.shape, "bn_ms": r.bn_ms, "ratios": r.ratios} for r in rows], fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
