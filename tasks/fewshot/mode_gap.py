"""The transductive-minus-running accuracy gap of batch-statistics norms, per norm over seeds.

Every few-shot run of a batch-statistics norm tests its selected weights on the
same episodes in both norm modes (:mod:`tasks.fewshot.protocol`), so the gap is
paired within each run: ``transductive - running`` of one run is one seed's
value. Per norm this prints each seed's gap, their mean and the 95% interval
over seeds (Student's t, n - 1 degrees of freedom: the seed is the unit).

    python -m tasks.fewshot.mode_gap runs/gap
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from scipy import stats

__all__ = ["run_gap", "gaps_by_norm", "mean_ci", "main"]


def run_gap(record: dict) -> float | None:
    """``transductive - running`` test accuracy of one finished record, or None when it has not both."""
    modes = record.get("test_norm_modes") or {}
    if set(modes) != {"transductive", "running"} or "(=" in " ".join(modes.values()):
        return None  # one mode only, or the second copied (no layer uses batch statistics: gap 0 by construction)
    return float(record[modes["transductive"]]) - float(record[modes["running"]])


def gaps_by_norm(records: Sequence[dict]) -> dict[tuple[str, str, str], dict[int, float]]:
    """{(norm label, method, ways/shots): {seed: gap}} over finished few-shot records with both modes."""
    out: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for r in records:
        gap = run_gap(r) if r.get("task") == "fewshot" and r.get("status") == "finished" else None
        if gap is not None:
            key = (str(r.get("norm_label", r.get("norm"))), str(r["coordinates"]["method"]), str(r["axis_value"]))
            if r["seed"] in out[key]:
                raise ValueError(f"two runs of {key} with seed {r['seed']}: give one comparison's runs")
            out[key][int(r["seed"])] = gap
    return dict(out)


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t interval (nan with one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.fewshot.mode_gap", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders holding few-shot run directories")
    args = parser.parse_args(argv)
    records = [json.loads(p.read_text()) for folder in args.folders for p in sorted(folder.rglob("result.json"))]
    gaps = gaps_by_norm(records)
    if not gaps:
        print("mode_gap: no finished few-shot record with both norm modes", file=sys.stderr)
        return 2
    print("| norm | method | episodes | seeds | gap per seed (points) | mean gap | 95% CI (t, seeds) |")
    print("|---|---|---|---:|---|---:|---|")
    for (norm, method, axis), per_seed in sorted(gaps.items()):
        values = [100 * per_seed[s] for s in sorted(per_seed)]
        mean, half = mean_ci(values)
        seeds = ", ".join(f"s{s}: {100 * per_seed[s]:+.2f}" for s in sorted(per_seed))
        print(f"| {norm} | {method} | {axis} | {len(values)} | {seeds} | {mean:+.2f} | "
              f"[{mean - half:+.2f}, {mean + half:+.2f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
