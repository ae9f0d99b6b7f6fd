"""Speed of every normalization relative to ``nn.BatchNorm2d``, side by side in one process.

    python -m normlayers.bench                 # ResNet-like shapes, batch 2..128
    python -m normlayers.bench --quick         # a few shapes, for a smoke run
    python -m normlayers.bench --norms bn bgn:num_groups=4 --batches 2 32
    python -m normlayers.bench --threads 1     # one thread (steadier on a loaded machine)
    python -m normlayers.bench --paths         # every BGN train path: the table normlayers.bgn_paths follows
    python -m normlayers.bench --floor         # framework floor at the small shapes (normlayers.bench_floor)

For each shape, every layer runs forward + backward (train mode) on the same input and
output gradient. Timings are interleaved (round r times every contender once before round
r+1 starts) and the median over rounds is kept, so a noisy neighbour slows every contender
alike; the table reports each contender's time as a ratio to BatchNorm2d's, plus BN's own
time for scale. Every BGN spec gets two columns: the layer as shipped (the path
``normlayers.bgn_paths`` chooses, the native kernel on CPU) and "eager", the same layer
restricted to the ATen-operator paths it used before the native kernel.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import create_norm, list_norms, resolve_norm
from .bgn_paths import TRAIN_PATHS, choose_train_path, forced_train_path
from .native import status as native_status

# (channels, spatial size) of CIFAR ResNet stages and ImageNet ResNet stages.
RESNET_SHAPES = [(16, 32), (32, 16), (64, 8), (64, 56), (128, 28), (256, 14)]
BATCHES = [2, 8, 32, 128]
QUICK_SHAPES = [(2, 16, 32, 32), (8, 64, 8, 8), (32, 32, 16, 16)]
DEFAULT_EXTRA = ["bgn:num_groups=16", "bgn:num_groups=256"]
EAGER = " eager"  # column suffix: the BGN layer restricted to its eager (ATen-operator) paths

Shape = tuple[int, int, int, int]


@dataclass
class Contender:
    """One column: a callable layer, optionally with a forced BGN train path."""

    key: str
    layer: Callable[[torch.Tensor], torch.Tensor]
    path: str | None = None
    inputs: tuple[torch.Tensor, torch.Tensor] | None = None  # its own (x, grad); default: the shared ones


@dataclass
class Row:
    shape: Shape
    bn_ms: float
    ratios: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


def time_once(contender: Contender, x: torch.Tensor, grad: torch.Tensor, iters: int, timer: Callable[[], float]) -> float:
    """Seconds per forward + backward (the forced path is set once, outside the timed loop)."""
    if contender.inputs is not None:
        x, grad = contender.inputs
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with forced_train_path(contender.path) if contender.path else nullcontext():
        sync()
        start = timer()
        for _ in range(iters):
            contender.layer(x).backward(grad)
        sync()
        return (timer() - start) / iters


def interleaved_medians(
    contenders: list[Contender], x: torch.Tensor, grad: torch.Tensor, rounds: int, budget_s: float, timer: Callable[[], float]
) -> dict[str, float]:
    """Median seconds per call of every contender; the first one sets the iteration count."""
    for c in contenders:  # warm up (allocator, lazy init, the native kernel's first load) and estimate cost
        time_once(c, x, grad, 2, timer)
    per_call = time_once(contenders[0], x, grad, 3, timer)
    iters = max(1, int(budget_s / max(per_call, 1e-6) / rounds / len(contenders)))
    samples: dict[str, list[float]] = {c.key: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            samples[c.key].append(time_once(c, x, grad, iters, timer))
    return {k: statistics.median(v) for k, v in samples.items()}


def bench_inputs(shape: Shape, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device).requires_grad_(True)
    grad = torch.randn(shape, generator=gen).to(device)
    return x, grad


def columns(specs: list[str]) -> list[str]:
    """Column keys: each spec, and for BGN specs also the eager variant."""
    keys = []
    for s in specs:
        keys.append(s)
        if resolve_norm(s).entry.name == "bgn":
            keys.append(s + EAGER)
    return keys


def bench_shape(specs: list[str], shape: Shape, device: str, rounds: int, budget_s: float, timer: Callable[[], float]) -> Row:
    c = shape[1]
    contenders = [Contender("bn", nn.BatchNorm2d(c).to(device))]
    for key in columns(specs):
        spec = key.removesuffix(EAGER)
        contenders.append(Contender(key, create_norm(spec, c).to(device).train(), "eager" if key.endswith(EAGER) else None))
    x, grad = bench_inputs(shape, device)
    med = interleaved_medians(contenders, x, grad, rounds, budget_s, timer)
    return Row(shape, med["bn"] * 1e3, {k: med[k] / med["bn"] for k in med if k != "bn"})


def column_label(key: str) -> str:
    return resolve_norm(key.removesuffix(EAGER)).label + (EAGER if key.endswith(EAGER) else "")


def format_table(rows: list[Row], keys: list[str]) -> str:
    head = "| N x C x H x W | BN ms | " + " | ".join(column_label(k) for k in keys) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(keys)]
    for r in rows:
        cells = " | ".join(f"{r.ratios[k]:.2f}" for k in keys)
        lines.append(f"| {'x'.join(map(str, r.shape))} | {r.bn_ms:.3f} | {cells} |")
    return "\n".join(lines)


def bench_paths(groups: list[int], shape: Shape, device: str, rounds: int, budget_s: float,
                timer: Callable[[], float], paths: list[str]) -> Row:
    """Every train path of BGN(G) for G in ``groups`` (G = C skipped: that is BN's kernel)."""
    c = shape[1]
    x, grad = bench_inputs(shape, device)
    contenders = [Contender("bn", nn.BatchNorm2d(c).to(device))]
    chosen = {}
    if "inductor" in paths:
        # Fresh compile caches per shape: with the caches of earlier shapes, dynamo would recompile with
        # dynamic shapes (slower generic kernels) and, past its recompile limit, silently run eager.
        torch._dynamo.reset()
    for g in groups:
        if g == c or (c * shape[2] * shape[3]) % g:
            continue
        chosen[g] = choose_train_path(x, g, c, synchronized=False)
        layer = create_norm(f"bgn:num_groups={g}", c).to(device).train()
        for path in paths:
            if path == "inductor":
                contenders.append(Contender(f"G={g} inductor", torch.compile(layer, dynamic=False)))
            else:
                contenders.append(Contender(f"G={g} {path}", layer, path))
    med = interleaved_medians(contenders, x, grad, rounds, budget_s, timer)
    return Row(shape, med["bn"] * 1e3, {k: med[k] / med["bn"] for k in med if k != "bn"}, {"chosen": chosen})


def format_paths(rows: list[Row]) -> str:
    """One line per (shape, G): each path's ratio to BN, the fastest, and the path the layer chooses."""
    paths = sorted({k.split(" ", 1)[1] for r in rows for k in r.ratios}, key=lambda p: (p not in TRAIN_PATHS, p))
    lines = ["| N x C x H x W | G | BN ms | " + " | ".join(paths) + " | fastest | chosen |",
             "|---|---:|---:|" + "---:|" * len(paths) + "---|---|"]
    for r in rows:
        for g in sorted({int(k.split()[0][2:]) for k in r.ratios}):
            ratios = {p: r.ratios[f"G={g} {p}"] for p in paths if f"G={g} {p}" in r.ratios}
            fastest = min(ratios, key=ratios.__getitem__)
            chosen = r.extra["chosen"][g]
            cells = " | ".join(f"{ratios[p]:.2f}" if p in ratios else "-" for p in paths)
            lines.append(f"| {'x'.join(map(str, r.shape))} | {g} | {r.bn_ms:.3f} | {cells} | {fastest} | {chosen} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m normlayers.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--norms", nargs="+", default=None, help="specs to time (default: every registered norm + a BGN G grid)")
    parser.add_argument("--batches", nargs="+", type=int, default=BATCHES)
    parser.add_argument("--quick", action="store_true", help="three small shapes, short timing")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--timer", choices=["wall", "cpu"], default="wall",
                        help="wall clock, or this thread's CPU time (only with --threads 1; ignores time-sharing)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per shape")
    parser.add_argument("--paths", action="store_true", help="time every BGN train path instead of the norms")
    parser.add_argument("--groups", nargs="+", type=int, default=[1, 16, 256], help="G values for --paths")
    parser.add_argument("--inductor", action="store_true", help="with --paths: add torch.compile of the layer (slow to compile)")
    parser.add_argument("--floor", action="store_true", help="framework floor at the small shapes (see normlayers.bench_floor)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(parser, args)
    finally:
        torch.set_num_threads(threads)  # called from Python (tests): leave the process as it was


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.timer == "cpu" and torch.get_num_threads() != 1:
        parser.error("--timer cpu measures one thread's CPU time; use it with --threads 1")
    timer = time.thread_time if args.timer == "cpu" else time.perf_counter
    if args.floor:
        from .bench_floor import run_floor

        return run_floor(args.rounds, args.budget, timer, args.timer, args.json_path)
    shapes: list[Shape] = [(b, c, s, s) for b in args.batches for c, s in RESNET_SHAPES]
    if args.quick:
        shapes = QUICK_SHAPES
        args.rounds, args.budget = 3, 0.3
    print(f"# forward+backward time / nn.BatchNorm2d, {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.timer} time; median of {args.rounds} interleaved rounds; "
          f"{native_status()}", flush=True)
    rows: list[Row] = []
    if args.paths:
        paths = list(TRAIN_PATHS) + (["inductor"] if args.inductor else [])
        for shape in shapes:
            row = bench_paths(args.groups, shape, args.device, args.rounds, args.budget, timer, paths)
            if not row.ratios:  # every G equals C or does not divide C*H*W here
                continue
            rows.append(row)
            table = format_paths(rows[-1:]).splitlines()
            print("\n".join(table if len(rows) == 1 else table[2:]), flush=True)
    else:
        specs = args.norms or [n for n in list_norms() if n not in ("bn", "none")] + DEFAULT_EXTRA
        specs = [str(resolve_norm(s).spec) for s in specs]
        keys = columns(specs)
        for shape in shapes:
            rows.append(bench_shape(specs, shape, args.device, args.rounds, args.budget, timer))
            table = format_table(rows[-1:], keys).splitlines()
            print("\n".join(table if len(rows) == 1 else table[2:]), flush=True)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump([{"shape": r.shape, "bn_ms": r.bn_ms, "ratios": r.ratios, **r.extra} for r in rows], fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
