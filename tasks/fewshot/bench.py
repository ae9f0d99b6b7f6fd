"""Meta-training step time of a normbench few-shot run against a plain learn2learn loop, in one process.

    python -m tasks.fewshot.bench                                # ProtoNet and second-order MAML, BN, 5-way 1-shot
    python -m tasks.fewshot.bench --norms bn bgn --shots 1 5 --steps 100 --repeats 3
    python -m tasks.fewshot.bench --compile --methods protonet  # each row also with trainer.compile (inductor)

Both sides train the same model (built by the task from the same config, norm
and seed) on the same tasks (learn2learn's taskset, the same seed for Python's
``random``) with the same optimizer (Adam at the method's learning rate) and
meta-batch, for the same number of meta-updates. The plain side is the loop of
learn2learn's examples, written out here: ``taskset.sample()``, split, embed or
``maml.clone()``/``adapt()``, ``backward()``, ``step()``. The normbench side is
``tasks.runner.run.execute`` (Lightning, the protocol, logging, checkpoints)
with validation and test switched off; its training time (RunClock) includes
task sampling, as the plain loop's does. ProtoNet embeds the task in the
config's forward mode (joint: one batch, as learn2learn's ProtoNet example).
MAML runs second order here whatever the config says (``--first-order`` for
first order). Repetitions alternate
between the sides and the median is kept; the ratio is normbench / plain
milliseconds per meta-update.

``--compile`` measures every row eager and compiled: the run sets
``trainer.compile`` and the plain loop compiles the same network (the task's
``compiled_networks``: ProtoNet's CNN-4); both sides leave the first meta-update
out, and the table adds the first run's cold ``compile_time_s``. MAML is refused
compiled (the run's one-line reason is printed in its row), as ``normbench run`` refuses it.
"""

from __future__ import annotations

import argparse
import random
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
from .config import FewShotConfig, InnerLoopConfig
from .protocol import forward_of, meta_batch_of, method_section
from .task import FEWSHOT

__all__ = ["plain_loop", "normbench_run", "ms_per_update", "main"]


def _config(path: str, method: str, norm: str, shots: int, steps: int, first_order: bool, out_dir: str,
            compile_: bool = False) -> FewShotConfig:
    argv = ["--config", path, "--method", method, "--norm", norm, "--shots", str(shots), "--out_dir", out_dir,
            "--trainer.max_steps", str(steps), "--trainer.epochs", "1000", "--trainer.log_every_n_steps", "50",
            "--trainer.compile", str(compile_).lower()]
    if method != "protonet":
        argv += [f"--{method}.first_order", str(first_order).lower()]
    cfg = parse_config(FEWSHOT, argv, raise_errors=True)
    assert isinstance(cfg, FewShotConfig)
    return cfg


def _split(x: torch.Tensor, y: torch.Tensor, ways: int, shots: int):
    """learn2learn's examples' split: the first ``shots`` images of each class block adapt, the rest evaluate."""
    per_class = len(y) // ways
    support = (torch.arange(len(y)) % per_class) < shots
    return x[support], y[support], x[~support], y[~support]


def plain_loop(cfg: FewShotConfig, steps: int) -> float:
    """Milliseconds per meta-update of a hand-written learn2learn loop (no validation)."""
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    module, datamodule = FEWSHOT.build(cfg, FEWSHOT.stages(cfg)[0], {})
    datamodule.setup("fit")
    taskset, learner = datamodule.train_tasks, module.learner.train()
    compiled = cfg.trainer.compile
    compiled_in_place(FEWSHOT, cfg, module)
    section = method_section(cfg)
    optimizer = torch.optim.Adam(learner.parameters(), lr=section.lr)
    meta_batch, ways, shots, joint = meta_batch_of(cfg), cfg.ways, cfg.shots, forward_of(cfg) == "joint"
    mean, std = module.mean, module.std
    start = time.perf_counter()
    for step in range(steps):
        if step == 1 and compiled:  # the compiling meta-update is left out, as the run record does
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        for _ in range(meta_batch):
            images, labels = taskset.sample()
            xs, ys, xq, yq = _split((images.float() / 255 - mean) / std, labels, ways, shots)
            if cfg.method == "protonet":  # one forward of the whole task, as learn2learn's ProtoNet example
                if joint:
                    embedded = learner.encoder(torch.cat([xs, xq]))
                    support, query = embedded[: len(xs)], embedded[len(xs):]
                else:
                    support, query = learner.encoder(xs), learner.encoder(xq)
                prototypes = torch.stack([support[ys == c].mean(0) for c in range(ways)])
                loss = F.cross_entropy(-torch.cdist(query, prototypes).pow(2), yq)
            else:
                assert isinstance(section, InnerLoopConfig)
                if joint or cfg.method != "maml":
                    raise SystemExit("the plain loop is learn2learn's MAML example: method maml, forward separate")
                clone = learner.adaptive.clone()
                for _ in range(section.train_steps):
                    clone.adapt(F.cross_entropy(clone(xs), ys))
                loss = F.cross_entropy(clone(xq), yq)
            (loss / meta_batch).backward()
        optimizer.step()
    return (time.perf_counter() - start) * 1000 / (steps - 1 if compiled else steps)


def normbench_run(cfg: FewShotConfig, out_dir: Path) -> dict:
    """The record of the same training through the run machinery (validation and test off)."""
    return benchmark_record(cfg, FEWSHOT, out_dir)


def ms_per_update(cfg: FewShotConfig, record: dict) -> float:
    """A run record's training throughput as milliseconds per meta-update."""
    return FEWSHOT.stages(cfg)[0].images_per_step / float(record["train_images_per_s"]) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.fewshot.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/fewshot/quick.yaml")
    parser.add_argument("--methods", nargs="+", default=["protonet", "maml"], choices=["protonet", "maml"])
    parser.add_argument("--norms", nargs="+", default=["bn"])
    parser.add_argument("--shots", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=60, help="meta-updates per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also measure with trainer.compile (inductor)")
    parser.add_argument("--first-order", action="store_true", help="first-order MAML (default: second order)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=r".*could not find the monitored key.*")  # validation is off
    order = "first" if args.first_order else "second"
    print(f"# ms per meta-update, normbench run vs plain learn2learn loop; MAML {order} order; "
          f"median of {args.repeats} alternating repeats; {args.config}")
    extra = compile_columns(args.compile)
    print("| method | norm | shots | meta-batch | steps | plain ms | normbench ms | ratio |" + extra[0])
    print("|---|---|---:|---:|---:|---:|---:|---:|" + extra[1])
    with tempfile.TemporaryDirectory() as tmp, cold_compile_cache(args.compile, Path(tmp) / "inductor"):
        for method in args.methods:
            for norm in args.norms:
                for shots in args.shots:
                    for compiled in compile_modes(args.compile):
                        cfg = _config(args.config, method, norm, shots, args.steps, args.first_order, tmp, compiled)
                        head = f"| {method} | {norm} | {shots} | {meta_batch_of(cfg)} | {args.steps} |"
                        tail = f" {'on' if compiled else 'off'} |" if args.compile else ""
                        refusal = FEWSHOT.compile_support(cfg) if compiled else None
                        if refusal:  # what `normbench run` would refuse with, in one line
                            print(f"{head} refused: {refusal} | | |{tail} |", flush=True)
                            continue
                        m = measure_alternating(lambda: plain_loop(cfg, args.steps), lambda: normbench_run(cfg, Path(tmp)),
                                                lambda r: ms_per_update(cfg, r), args.repeats)
                        row = f"{head} {m.plain:.1f} | {m.normbench:.1f} | {m.ratio:.2f} |"
                        print(row + compile_cells(args.compile, compiled, m.compile_time_s), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
