"""Cost of a DARTS search step, first and second order: the Lightning module against a plain PyTorch loop.

    python -m tasks.nas.bench                                   # quick config, BN, batch 16, both orders
    python -m tasks.nas.bench --norm bgn:num_groups=1 --steps 30 --repeats 3 --json bench.json

Both sides make the same updates on the same data (the quick config's supernet
and search halves): an alpha step (Adam, first-order or unrolled gradient from
:mod:`tasks.nas.bilevel`), then a weight step (SGD, clipping, per-batch cosine).
The Lightning side is :class:`~tasks.nas.search_module.SearchModule` in a
Trainer (manual optimization, CombinedLoader; validation, logging and
checkpoints off); the plain side is a hand-written loop over the same loaders.
Every measurement runs in a fresh process, so that its peak resident memory
(``ru_maxrss``, minus the level before the first step) is its own; repeats
alternate between the variants and the medians are reported, with the ratios
Lightning / plain and second / first order.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

VARIANTS = ("plain", "lightning")


def _config(args: argparse.Namespace, order: str):
    from ..runner.parse import parse_config
    from .task import NAS

    steps = args.warmup + args.steps  # the schedule's length on both sides
    argv = ["--config", args.config, "--norm", args.norm, "--batch_size", str(args.batch_size), "--nas.order", order,
            "--search.epochs", "1000", "--search.max_steps", str(steps),
            # an alpha step every batch at arch_lr, as the plain loop makes
            "--search.arch_warmup", "0", "--search.arch_update_batch", "null", "--search.arch_lr_scaling", "none"]
    cfg = parse_config(NAS, argv, raise_errors=True)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=0))


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def _plain(module: Any, datamodule: Any, steps: int) -> list[float]:
    from .bilevel import first_order_gradient, unrolled_gradient
    from .data import ARCH, WEIGHTS

    hp = module.hparams
    net = module.net.train()
    weight_opt, arch_opt = module.build_optimizers()
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(weight_opt, T_max=steps, eta_min=hp.weight_lr_min)
    alphas = net.arch_parameters()
    loaders = datamodule.train_dataloader().iterables
    starts: list[float] = []
    while len(starts) <= steps:
        for train_raw, arch_raw in zip(loaders[WEIGHTS], loaders[ARCH]):
            starts.append(time.perf_counter())
            if len(starts) > steps:
                break
            train = datamodule.prepare_batch(train_raw, train=True)
            arch = datamodule.prepare_batch(arch_raw, train=True)
            if hp.order == "first":
                result = first_order_gradient(net, alphas, arch)
            else:
                result = unrolled_gradient(net, net.named_weight_parameters(), alphas, weight_opt, train, arch,
                                           hp.fd_epsilon)
            arch_opt.zero_grad()
            for alpha, grad in zip(alphas, result.grads):
                alpha.grad = grad
            arch_opt.step()
            weight_opt.zero_grad()
            F.cross_entropy(net(train[0]), train[1]).backward()
            for alpha in alphas:
                alpha.grad = None
            torch.nn.utils.clip_grad_norm_(net.weight_parameters(), hp.grad_clip)
            weight_opt.step()
            schedule.step()
    return [b - a for a, b in zip(starts, starts[1:])]


def _lightning(module: Any, datamodule: Any, steps: int) -> list[float]:
    import lightning as L

    starts: list[float] = []

    class StepClock(L.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            starts.append(time.perf_counter())

        def on_train_end(self, *args: Any) -> None:
            starts.append(time.perf_counter())

    trainer = L.Trainer(max_steps=2 * steps, max_epochs=1000, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[StepClock()])
    trainer.fit(module, datamodule=datamodule)
    return [b - a for a, b in zip(starts, starts[1:])]


def measure(args: argparse.Namespace, order: str, variant: str) -> dict[str, Any]:
    """One measurement (run in a child process): per-step seconds and the peak memory the steps added."""
    from .task import NAS

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = _config(args, order)
    stage = NAS.stages(cfg)[0]
    module, datamodule = NAS.build(cfg, stage, {})
    datamodule.setup("fit")
    base = _max_rss_mb()
    total = args.warmup + args.steps
    times = _plain(module, datamodule, total) if variant == "plain" else _lightning(module, datamodule, total)
    return {"order": order, "variant": variant, "step_s": statistics.median(times[args.warmup:]),
            "peak_mb": _max_rss_mb() - base, "base_mb": base}


def _child(args: argparse.Namespace, order: str, variant: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "tasks.nas.bench", "--one", order, variant, "--config", args.config, "--norm",
            args.norm, "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--threads", str(args.threads)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.nas.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/nas/quick.yaml")
    parser.add_argument("--norm", default="bn")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--orders", nargs="+", default=["first", "second"], choices=["first", "second"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per variant (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--compile", action="store_true",
                        help="say whether trainer.compile can be measured for nas (it is refused: the reason is printed)")
    parser.add_argument("--one", nargs=2, metavar=("ORDER", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args, *args.one)))
        return 0
    if args.compile:  # one line, the refusal `normbench run nas --trainer.compile true` gives, then the eager table
        from .task import NAS

        cfg = _config(args, args.orders[0])
        print(f"# compiled: not measured, trainer.compile is refused for nas: {NAS.compile_support(cfg)}")
    rows = []
    for order in args.orders:
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                runs[variant].append(_child(args, order, variant))
        row: dict[str, Any] = {"order": order}
        for variant in VARIANTS:
            row[f"{variant}_step_s"] = statistics.median(r["step_s"] for r in runs[variant])
            row[f"{variant}_peak_mb"] = statistics.median(r["peak_mb"] for r in runs[variant])
        row["lightning_over_plain"] = row["lightning_step_s"] / row["plain_step_s"]
        rows.append(row)
    first = next((r for r in rows if r["order"] == "first"), None)
    print(f"# DARTS search step, {args.config}, norm {args.norm}, batch {args.batch_size} per half, "
          f"{args.threads} thread(s); median of {args.repeats} alternating runs of {args.steps} steps")
    print("| order | plain s/step | Lightning s/step | Lightning / plain | vs first order (plain) "
          "| plain peak MB | Lightning peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if first is not None:
            row["over_first_order"] = row["plain_step_s"] / first["plain_step_s"]
        versus = f"{row['over_first_order']:.2f}" if "over_first_order" in row else "-"
        print(f"| {row['order']} | {row['plain_step_s']:.3f} | {row['lightning_step_s']:.3f} | "
              f"{row['lightning_over_plain']:.2f} | {versus} | {row['plain_peak_mb']:.0f} | "
              f"{row['lightning_peak_mb']:.0f} |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
