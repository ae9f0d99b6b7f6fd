"""Cost of an adversarial-training step in a normbench run against a plain PyTorch loop, in one process.

    python -m tasks.adversarial.bench                          # BN, batch 2 and 128, quick config
    python -m tasks.adversarial.bench --norms bn bgn --batch-sizes 2 32 128 --repeats 3

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
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchattacks

from ..optim import build_sgd
from ..runner.bench_run import benchmark_record
from ..runner.parse import parse_config
from .task import ADVERSARIAL


def _config(config: str, norm: str, batch_size: int, steps: int, out_dir: str):
    argv = ["--config", config, "--norm", norm, "--batch_size", str(batch_size), "--out_dir", out_dir,
            "--trainer.max_steps", str(steps), "--trainer.epochs", "1000", "--trainer.log_every_n_steps", "50"]
    return parse_config(ADVERSARIAL, argv, raise_errors=True)


def plain_loop(cfg, steps: int, attack: bool = True) -> float:
    """Images per second of a hand-written PGD-AT loop (``attack=False``: ordinary training on clean images)."""
    torch.manual_seed(cfg.seed)
    module, datamodule = ADVERSARIAL.build(cfg, ADVERSARIAL.stages(cfg)[0], {})
    datamodule.setup("fit")
    opt_sched = build_sgd(module.net, cfg.optim, cfg.batch_size, steps, steps)
    optimizer, scheduler = opt_sched["optimizer"], opt_sched["lr_scheduler"]["scheduler"]
    net = module.net.train()
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
            if done == steps:
                break
    return images / (time.perf_counter() - start)


def normbench_run(cfg, out_dir: Path) -> float:
    """Images per second of the same PGD-AT training through the run machinery (validation and test off)."""
    return float(benchmark_record(cfg, ADVERSARIAL, out_dir)["train_images_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.adversarial.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/adversarial/quick.yaml")
    parser.add_argument("--norms", nargs="+", default=["bn"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[2, 128])
    parser.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 300 at bs 2, fewer above)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*could not find the monitored key.*")  # validation is off
    print(f"# PGD-AT training images/s, normbench run vs plain loop (same torchattacks PGD); "
          f"{torch.get_num_threads()} threads; median of {args.repeats} alternating repeats; {args.config}")
    print("| norm | batch | steps | clean step img/s | plain PGD-AT img/s | normbench img/s | ratio | PGD-AT cost vs clean |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for norm in args.norms:
            for batch in args.batch_sizes:
                steps = args.steps or max(8, 600 // batch)
                cfg = _config(args.config, norm, batch, steps, tmp)
                clean = plain_loop(cfg, steps, attack=False)
                plain, ours = [], []
                for _ in range(args.repeats):
                    plain.append(plain_loop(cfg, steps))
                    ours.append(normbench_run(cfg, Path(tmp)))
                p, o = statistics.median(plain), statistics.median(ours)
                print(f"| {norm} | {batch} | {steps} | {clean:.0f} | {p:.1f} | {o:.1f} | {o / p:.2f} | "
                      f"{clean / p:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
