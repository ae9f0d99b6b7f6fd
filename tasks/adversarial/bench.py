"""Cost of an adversarial-training step in a normbench run against a plain PyTorch loop, in one process.

    python -m tasks.adversarial.bench                          # BN, batch 2 and 128, quick config
    python -m tasks.adversarial.bench --norms bn bgn --batch-sizes 2 32 128 --repeats 3
    python -m tasks.adversarial.bench --compile                # each row also with trainer.compile (inductor)

Both sides train the same network (the quick config's, same norm and seed) on
the same data with the same optimizer, and attack every batch with the same
torchattacks PGD (the config's epsilon, step and steps, random start, model in
eval mode while it runs). The plain side is a hand-written loop calling the
attack the way torchattacks' README does; the normbench side is
``tasks.runner.run.execute`` (Lightning, logging, checkpoints, layer modes
from the registry) with validation and test switched off. Repetitions
alternate between the two sides and the median is kept; the ratio is
normbench / plain images per second (1.0: no overhead). A plain, clean step is
timed too, so the cost of PGD-7 relative to ordinary training is visible.

``--compile`` measures every row eager and compiled: the run sets
``trainer.compile`` and the plain loop compiles the same network in place
(attacks then run the compiled network too, in eval mode: a second graph). Both
sides leave the first step (the compiles) out of images/s, and the table adds the
first run's cold ``compile_time_s``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchattacks

from ..optim import build_sgd
from ..runner.bench_run import (
    benchmark_record,
    cold_compile_cache,
    compile_cells,
    compile_columns,
    compile_modes,
    compiled_in_place,
    measure_alternating,
)
from ..runner.parse import parse_config
from .task import ADVERSARIAL


def _config(config: str, norm: str, batch_size: int, steps: int, out_dir: str, compile_: bool = False):
    argv = ["--config", config, "--norm", norm, "--batch_size", str(batch_size), "--out_dir", out_dir,
            "--trainer.max_steps", str(steps), "--trainer.epochs", "1000", "--trainer.log_every_n_steps", "50",
            "--trainer.compile", str(compile_).lower()]
    return parse_config(ADVERSARIAL, argv, raise_errors=True)


def plain_loop(cfg, steps: int, attack: bool = True) -> float:
    """Images per second of a hand-written PGD-AT loop (``attack=False``: ordinary training on clean images)."""
    torch.manual_seed(cfg.seed)
    module, datamodule = ADVERSARIAL.build(cfg, ADVERSARIAL.stages(cfg)[0], {})
    datamodule.setup("fit")
    opt_sched = build_sgd(module.net, cfg.optim, cfg.batch_size, steps, steps)
    optimizer, scheduler = opt_sched["optimizer"], opt_sched["lr_scheduler"]["scheduler"]
    net = module.net.train()
    compiled_in_place(ADVERSARIAL, cfg, module)
    s = cfg.pgd_at
    pgd = torchattacks.PGD(net, eps=s.epsilon, alpha=s.step_size, steps=s.steps, random_start=True)
    done, images = 0, 0
    start = time.perf_counter()
    while done < steps:
        for x, y in datamodule.train_dataloader():
            x = datamodule.transform(x, train=True)
            if attack:
                x = pgd(x, y)  # torchattacks: eval mode during the attack, train mode restored
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
    """The record of the same PGD-AT training through the run machinery (validation and test off)."""
    return benchmark_record(cfg, ADVERSARIAL, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.adversarial.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/adversarial/quick.yaml")
    parser.add_argument("--norms", nargs="+", default=["bn"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[2, 128])
    parser.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 300 at bs 2, fewer above)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also measure with trainer.compile (inductor)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*could not find the monitored key.*")  # validation is off
    print(f"# PGD-AT training images/s, normbench run vs plain loop (same torchattacks PGD); "
          f"{torch.get_num_threads()} threads; median of {args.repeats} alternating repeats; {args.config}")
    extra = compile_columns(args.compile)
    print("| norm | batch | steps | clean step img/s | plain PGD-AT img/s | normbench img/s | ratio | PGD-AT cost vs clean |"
          + extra[0])
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + extra[1])
    with tempfile.TemporaryDirectory() as tmp, cold_compile_cache(args.compile, Path(tmp) / "inductor"):
        for norm in args.norms:
            for batch in args.batch_sizes:
                steps = args.steps or max(8, 600 // batch)
                for compiled in compile_modes(args.compile):
                    cfg = _config(args.config, norm, batch, steps, tmp, compiled)
                    m = measure_alternating(lambda: plain_loop(cfg, steps), lambda: normbench_run(cfg, Path(tmp)),
                                            lambda r: float(r["train_images_per_s"]), args.repeats)
                    clean = plain_loop(cfg, steps, attack=False)
                    row = (f"| {norm} | {batch} | {steps} | {clean:.0f} | {m.plain:.1f} | {m.normbench:.1f} | "
                           f"{m.ratio:.2f} | {clean / m.plain:.1f}x |")
                    row += compile_cells(args.compile, compiled, m.compile_time_s)
                    print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
