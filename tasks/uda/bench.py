"""One DANN training step through normbench against a plain PyTorch loop doing the same work, in one process.

    python -m tasks.uda.bench                              # BN, per-domain batch 2 and 32, quick config
    python -m tasks.uda.bench --norms bn bgn --batch-sizes 2 8 32 --steps 400
    python -m tasks.uda.bench --compile --batch-sizes 2 128    # each row also with trainer.compile (inductor)

Both sides train the same DANN (same config, norm, seed: LeNet, gradient reversal
with its ramp, the MLP discriminator, SGD with the annealed learning rate) on the
same source and target batches for the same number of steps. The plain side is a
hand-written loop over the data module's loaders and batch transform; the
normbench side is ``tasks.runner.run.execute`` (Lightning, the combined loader,
logging, checkpoints) with validation and test switched off. Repetitions alternate
between the sides and the median is kept. Images per second count source and
target images (2 x batch per step); the ratio is normbench / plain.

``--compile`` measures every row eager and compiled: the run sets
``trainer.compile`` and the plain loop compiles the same networks in place (the
task's ``compiled_networks``); both sides leave the first step out of images/s,
and the table adds the first run's cold ``compile_time_s``.
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
from .adversarial import annealed_lr_factor, domain_adversarial_loss, grl_coefficient, reverse_gradient
from .task import UDA


def _config(config: str, norm: str, batch_size: int, steps: int, out_dir: str, cache_dir: str | None,
            compile_: bool = False):
    argv = ["--config", config, "--norm", norm, "--batch_size", str(batch_size), "--out_dir", out_dir,
            "--method", "dann", "--trainer.max_steps", str(steps), "--trainer.epochs", "1000",
            "--trainer.log_every_n_steps", "50", "--trainer.compile", str(compile_).lower()]
    if cache_dir:
        argv += ["--data.cache_dir", cache_dir]
    return parse_config(UDA, argv, raise_errors=True)


def plain_loop(cfg, steps: int) -> float:
    """Images per second (source + target) of a hand-written DANN loop (no validation)."""
    torch.manual_seed(cfg.seed)
    module, datamodule = UDA.build(cfg, UDA.stages(cfg)[0], {})
    datamodule.setup("fit")
    net, disc = module.net.train(), module.discriminator.train()
    compiled_in_place(UDA, cfg, module)
    optim = cfg.optim
    optimizer = torch.optim.SGD([{"params": net.features.parameters()}, {"params": net.classifier.parameters()},
                                 {"params": disc.parameters()}], lr=optim.lr, momentum=optim.momentum,
                                weight_decay=optim.weight_decay, nesterov=optim.nesterov)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: annealed_lr_factor(min(1.0, s / steps)))
    loaders = datamodule.train_dataloader().iterables
    done, images = 0, 0
    start = time.perf_counter()
    while done < steps:
        for (x, y), x_target in zip(loaders["labelled"], loaders["unlabelled"]):
            x, x_target = datamodule.transform(x, train=True), datamodule.transform(x_target, train=True)
            features = net.features(torch.cat([x, x_target]))
            cls_loss = F.cross_entropy(net.classifier(features[: len(x)]), y)
            reversed_features = reverse_gradient(features, grl_coefficient(done / steps))
            transfer, _ = domain_adversarial_loss(disc(reversed_features), (len(x), len(x_target)))
            loss = cls_loss + cfg.trade_off * transfer
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
            images += len(x) + len(x_target)
            if done == 1 and cfg.trainer.compile:  # the compiling step is left out, as the run record does
                images, start = 0, time.perf_counter()
            if done == steps:
                break
    return images / (time.perf_counter() - start)


def normbench_run(cfg, out_dir: Path) -> dict:
    """The record of the same training through the run machinery (validation and test off)."""
    return benchmark_record(cfg, UDA, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.uda.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/uda/quick.yaml")
    parser.add_argument("--norms", nargs="+", default=["bn"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[2, 32])
    parser.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 1000 at batch 2, 200 at 32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also measure with trainer.compile (inductor)")
    parser.add_argument("--cache-dir", default=None, help="Fashion-MNIST-M cache (default as for runs)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning's combined loader, both sides alike
    print(f"# DANN training images/s (source + target), normbench run vs plain PyTorch loop; "
          f"{torch.get_num_threads()} threads; median of {args.repeats} alternating repeats; {args.config}")
    extra = compile_columns(args.compile)
    print("| norm | batch per domain | steps | plain img/s | normbench img/s | ratio |" + extra[0])
    print("|---|---:|---:|---:|---:|---:|" + extra[1])
    with tempfile.TemporaryDirectory() as tmp, cold_compile_cache(args.compile, Path(tmp) / "inductor"):
        for norm in args.norms:
            for batch in args.batch_sizes:
                steps = args.steps or max(200, 2000 // batch)
                for compiled in compile_modes(args.compile):
                    cfg = _config(args.config, norm, batch, steps, tmp, args.cache_dir, compiled)
                    m = measure_alternating(lambda: plain_loop(cfg, steps), lambda: normbench_run(cfg, Path(tmp)),
                                            lambda r: float(r["train_images_per_s"]), args.repeats)
                    row = f"| {norm} | {batch} | {steps} | {m.plain:.0f} | {m.normbench:.0f} | {m.ratio:.2f} |"
                    row += compile_cells(args.compile, compiled, m.compile_time_s)
                    print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
