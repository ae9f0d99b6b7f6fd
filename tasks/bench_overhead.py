"""Training throughput of a normbench run against a plain PyTorch loop, in one process.

    python -m tasks.bench_overhead                       # batch 2 and 128, BN, quick config
    python -m tasks.bench_overhead --norms bn bgn --batch-sizes 2 16 128 --steps 600
    python -m tasks.bench_overhead --compile             # each row also with trainer.compile (inductor)

Both sides train the same model (same config, norm, seed) on the same data with
the same optimizer and schedule for the same number of steps: the plain side is
a hand-written loop over the same DataLoader and batch transform; the normbench
side is ``tasks.runner.run.execute`` (Lightning, logging, checkpoints, metrics)
with validation switched off. Repetitions alternate between the two sides and
the median is kept. Images per second are reported with their ratio
(normbench / plain): a small-batch normalization benchmark lives at batch 2,
where per-step overhead is most of the step.

``--compile`` measures every row twice, eager and compiled: the plain loop
compiles its network in place and the run sets ``trainer.compile``. Compiled,
both sides leave the first (compiling) step out of images/s, as the run record
does, and the table adds the first repeat's ``compile_time_s``: the run goes
first, with inductor's cache in a fresh folder, so that is a cold compile (later
repeats reuse the process's caches).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .classification.task import CLASSIFICATION
from .optim import build_sgd
from .runner.bench_run import (
    benchmark_record,
    cold_compile_cache,
    compile_cells,
    compile_columns,
    compile_modes,
    compiled_in_place,
    measure_alternating,
)
from .runner.parse import parse_config


def _config(config: str, norm: str, batch_size: int, steps: int, out_dir: str, compile_: bool = False):
    argv = ["--config", config, "--norm", norm, "--batch_size", str(batch_size), "--out_dir", out_dir,
            "--trainer.max_steps", str(steps), "--trainer.epochs", "1000",
            "--trainer.log_every_n_steps", "50", "--data.val_size", "1000", "--trainer.compile", str(compile_).lower()]
    return parse_config(CLASSIFICATION, argv, raise_errors=True)


def plain_loop(cfg, steps: int) -> float:
    """Images per second of a hand-written training loop (no validation); compiled: from the second step on."""
    torch.manual_seed(cfg.seed)
    stage = CLASSIFICATION.stages(cfg)[0]
    module, datamodule = CLASSIFICATION.build(cfg, stage, {})
    datamodule.setup("fit")
    opt_sched = build_sgd(module.net, cfg.optim, cfg.batch_size, steps, steps)
    optimizer, scheduler = opt_sched["optimizer"], opt_sched["lr_scheduler"]["scheduler"]
    net = module.net.train()
    compiled_in_place(CLASSIFICATION, cfg, module)
    done, images = 0, 0
    start = time.perf_counter()
    while done < steps:
        for x, y in datamodule.train_dataloader():
            x = datamodule.transform(x, train=True)
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
            images += len(y)
            if done == 1 and cfg.trainer.compile:  # the compiling step is left out, as the run record does
                images, start = 0, time.perf_counter()
            if done == steps:
                break
    return images / (time.perf_counter() - start)


def normbench_run(cfg, out_dir: Path) -> dict:
    """The record of the same training through the run machinery (validation off): ``train_images_per_s``."""
    return benchmark_record(cfg, CLASSIFICATION, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.bench_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/classification/quick.yaml")
    parser.add_argument("--norms", nargs="+", default=["bn"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[2, 128])
    parser.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 1500 at bs 2, fewer above)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also measure with trainer.compile (inductor)")
    args = parser.parse_args(argv)
    print(f"# training images/s, normbench run vs plain PyTorch loop; {torch.get_num_threads()} threads; "
          f"median of {args.repeats} alternating repeats; {args.config}")
    extra = compile_columns(args.compile)
    print("| norm | batch | steps | plain img/s | normbench img/s | ratio |" + extra[0])
    print("|---|---:|---:|---:|---:|---:|" + extra[1])
    with tempfile.TemporaryDirectory() as tmp, cold_compile_cache(args.compile, Path(tmp) / "inductor"):
        for norm in args.norms:
            for batch in args.batch_sizes:
                steps = args.steps or max(30, 3000 // batch)
                for compiled in compile_modes(args.compile):
                    cfg = _config(args.config, norm, batch, steps, tmp, compiled)
                    m = measure_alternating(lambda: plain_loop(cfg, steps), lambda: normbench_run(cfg, Path(tmp)),
                                            lambda r: float(r["train_images_per_s"]), args.repeats)
                    row = f"| {norm} | {batch} | {steps} | {m.plain:.0f} | {m.normbench:.0f} | {m.ratio:.2f} |"
                    row += compile_cells(args.compile, compiled, m.compile_time_s)
                    print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
