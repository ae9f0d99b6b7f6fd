"""Choose MAML's (or ANIL's) test-time adaptation steps on the meta-validation episodes of finished runs.

The number of adaptation steps at test time is a hyper-parameter, so it is
chosen on validation data, never on the test episodes, and for all norms
together (it was once chosen on BGN's test accuracy). For every run directory
given, this loads the run's resolved config and its selected checkpoint
(``best.ckpt``; ``--checkpoint last`` for the last one), rebuilds the task's
module and episodes, and evaluates the fixed episodes of ``--set`` (``val`` by
default) after each count of ``--steps``, in every norm mode the run reports
(both for batch-statistics norms, :func:`~tasks.fewshot.protocol.other_norm_mode`),
from one adaptation per episode (:meth:`~tasks.fewshot.methods._InnerLoop.accuracies_by_steps`).

It prints one Markdown table, a row per (run, mode) and a mean row per mode,
and names the count with the best mean accuracy in each run's configured mode
over all runs (ties: the fewer steps). ``--json`` writes the per-episode means.

    python -m tasks.fewshot.select_steps runs/gap/fewshot-* --steps 1 2 3 5 8 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import yaml

from ..runner.errors import ConfigError
from ..runner.parse import parse_config
from ..runner.rundir import CHECKPOINT_DIR
from .config import FewShotConfig
from .protocol import norm_mode_of, other_norm_mode, set_evaluation_modes
from .task import FEWSHOT

__all__ = ["RunSteps", "load_run", "steps_accuracies", "choose", "main"]


@dataclass
class RunSteps:
    """One run's mean accuracy per norm mode and step count on one episode set."""

    run: str
    norm: str
    seed: int
    configured: str
    accuracy: dict[str, dict[int, float]]  # mode -> steps -> mean accuracy over the episodes


def load_run(run_dir: Path, checkpoint: str = "best") -> tuple[FewShotConfig, torch.nn.Module, object]:
    """(config, module with the checkpoint's weights, set-up data module) of a finished few-shot run."""
    raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    if raw.pop("task", "fewshot") != "fewshot":
        raise ConfigError(f"{run_dir}: not a few-shot run")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:  # the resolved config, without the task key
        yaml.safe_dump(raw, fh)
        fh.flush()
        cfg = parse_config(FEWSHOT, ["--config", fh.name], raise_errors=True)
    assert isinstance(cfg, FewShotConfig)
    if cfg.method == "protonet":
        raise ConfigError(f"{run_dir}: protonet has no adaptation steps (maml and anil do)")
    path = run_dir / CHECKPOINT_DIR / f"{checkpoint}.ckpt"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {path.name} under {CHECKPOINT_DIR}/ (is the run finished?)")
    stage = FEWSHOT.stages(cfg)[0]
    module, datamodule = FEWSHOT.build(cfg, stage, {})
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    datamodule.setup("test")
    return cfg, module, datamodule


def steps_accuracies(module: torch.nn.Module, episodes: object, steps: Sequence[int], modes: Sequence[str]
                     ) -> dict[str, dict[int, float]]:
    """Mean accuracy over ``episodes`` ((index, images, labels) items) per mode and step count.

    Buffers are put back after every episode, as in the task's own evaluation.
    """
    learner = module.learner  # type: ignore[attr-defined]
    module.guard.capture()  # type: ignore[attr-defined]
    sums = {mode: {k: 0.0 for k in steps} for mode in modes}
    count = 0
    for i in range(len(episodes)):  # type: ignore[arg-type]
        _, images, labels = episodes[i]  # type: ignore[index]
        episode = module.episode(images, labels)  # type: ignore[attr-defined]
        for mode in modes:
            set_evaluation_modes(learner, mode)  # type: ignore[arg-type]
            with module.guard.episode():  # type: ignore[attr-defined]
                for k, acc in learner.accuracies_by_steps(episode, steps).items():
                    sums[mode][k] += acc
        count += 1
    return {mode: {k: total / count for k, total in per.items()} for mode, per in sums.items()}


def choose(results: Sequence[RunSteps]) -> int:
    """The step count with the best mean accuracy in each run's configured mode (ties: fewer steps)."""
    steps = sorted(results[0].accuracy[results[0].configured])
    means = {k: sum(r.accuracy[r.configured][k] for r in results) / len(results) for k in steps}
    return max(steps, key=lambda k: (round(means[k], 12), -k))


def table(results: Sequence[RunSteps], steps: Sequence[int]) -> str:
    """Markdown: a row per run and mode (accuracy in %), then the mean of each mode over the runs."""
    head = "| run | norm | seed | mode | " + " | ".join(f"{k} steps" for k in steps) + " |"
    lines = [head, "|" + "---|" * 4 + "---:|" * len(steps)]
    for r in results:
        for mode, per in r.accuracy.items():
            star = " (configured)" if mode == r.configured else ""
            lines.append(f"| {r.run} | {r.norm} | {r.seed} | {mode}{star} | "
                         + " | ".join(f"{100 * per[k]:.2f}" for k in steps) + " |")
    for mode in sorted({m for r in results for m in r.accuracy}):
        rows = [r.accuracy[mode] for r in results if mode in r.accuracy]
        lines.append(f"| mean of {len(rows)} | | | {mode} | "
                     + " | ".join(f"{100 * sum(p[k] for p in rows) / len(rows):.2f}" for k in steps) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.fewshot.select_steps", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished maml or anil run directories")
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 3, 5, 8, 10])
    parser.add_argument("--set", choices=["val", "test"], default="val", dest="episode_set",
                        help="episodes to evaluate (choose on val; test only to report at a chosen count)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--modes", choices=["both", "configured"], default="both",
                        help="norm modes to evaluate: the run's two (batch-statistics norms) or the configured one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if min(args.steps) < 1:
        print("select_steps: --steps must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    steps = sorted(set(args.steps))
    results = []
    try:
        for run_dir in args.runs:
            cfg, module, datamodule = load_run(run_dir, args.checkpoint)
            second = other_norm_mode(cfg)
            both = args.modes == "both" and second is not None and second.evaluated
            modes = [norm_mode_of(cfg)] + ([second.mode] if both and second is not None else [])
            accuracy = steps_accuracies(module, datamodule.eval_sets[args.episode_set], steps, modes)  # type: ignore
            results.append(RunSteps(run_dir.name, str(cfg.norm), cfg.seed, norm_mode_of(cfg), accuracy))
            print(f"{run_dir.name}: done", file=sys.stderr, flush=True)
    except ConfigError as exc:
        print(f"select_steps: {exc}", file=sys.stderr)
        return 2
    print(table(results, steps))
    best = choose(results)
    print(f"\nbest on {args.episode_set} (mean over {len(results)} runs, configured mode): {best} steps")
    if args.json is not None:
        args.json.write_text(json.dumps({"set": args.episode_set, "checkpoint": args.checkpoint, "best": best,
                                         "runs": [r.__dict__ for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
