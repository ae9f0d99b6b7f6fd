"""What adaptation bought over the source-only baseline, per norm and pair, from finished run records.

    python -m tasks.uda.gain runs/uda_quick

For every norm and source -> target pair that has a finished source-only run and
a finished run of another method (same benchmark, batch size, domain-batch
protocol and seed), prints the difference in target accuracy in points: the
method minus source-only, and AdaBN minus source-only (where AdaBN applies).
Seeds are averaged. The numbers come from the records alone, so DANN's gain (or
loss) is measured, never assumed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from normlayers import list_norms

__all__ = ["collect_gains", "main"]

Key = tuple[str, str, int, str]  # dataset, domain batches, batch size, method
Cell = tuple[tuple[int, int], str, float, str]  # (registry position, G), norm label, axis order, pair label


def _records(root: Path) -> list[dict]:
    out = []
    for path in sorted(root.rglob("result.json")):
        record = json.loads(path.read_text())
        if record.get("task") == "uda" and record.get("status") == "finished":
            out.append(record)
    return out


def _norm_order(record: dict) -> tuple[int, int]:
    names = list_norms()
    name = record["norm_name"]
    return (names.index(name) if name in names else len(names), record.get("norm_num_groups") or 0)


def collect_gains(root: Path) -> dict[Key, dict[Cell, list[float]]]:
    """(dataset, protocol, batch, method vs source-only) -> (norm, pair) -> gains in points, one per seed."""
    base: dict[tuple, dict] = {}
    for r in _records(root):
        if r["coordinates"]["method"] == "source_only":
            base[(r["dataset"], r["axis_value"], r["norm"], r["batch_size"], json.dumps(r["protocol"]), r["seed"])] = r
    gains: dict[Key, dict[Cell, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in _records(root):
        protocol = json.dumps(r["protocol"])
        ref = base.get((r["dataset"], r["axis_value"], r["norm"], r["batch_size"], protocol, r["seed"]))
        if ref is None:
            continue
        cell = (_norm_order(r), r["norm_label"], float(r["axis_order"]), r["axis_label"])
        setting = (r["dataset"], r["protocol"].get("domain_batches", ""), r["batch_size"])
        method = r["coordinates"]["method"]
        if method != "source_only":
            gains[(*setting, method)][cell].append(100 * (r["test/target_acc"] - ref["test/target_acc"]))
        elif "test/target_acc_adabn" in r:
            gains[(*setting, "adabn")][cell].append(100 * (r["test/target_acc_adabn"] - r["test/target_acc"]))
    return gains


def _table(cells: dict[Cell, list[float]]) -> list[str]:
    """Rows: norms in registry order, then by G; columns: pairs in axis order, then their average."""
    by_cell = {(norm, pair): values for (_, norm, _, pair), values in cells.items()}
    norms = [n for _, n in sorted({(c[0], c[1]) for c in cells})]
    pairs = [p for _, p in sorted({(c[2], c[3]) for c in cells})]
    lines = ["| Norm | " + " | ".join(pairs) + " | Avg. |", "|:--|" + "--:|" * (len(pairs) + 1)]
    for norm in norms:
        values = [statistics.mean(by_cell[(norm, p)]) if (norm, p) in by_cell else None for p in pairs]
        shown = [f"{v:+.2f}" if v is not None else "–" for v in values]
        average = f"{statistics.mean(values):+.2f}" if all(v is not None for v in values) else "–"
        lines.append(f"| {norm} | " + " | ".join(shown) + f" | {average} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.uda.gain", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="a folder of uda runs (searched recursively)")
    args = parser.parse_args(argv)
    gains = collect_gains(args.runs)
    if not gains:
        print(f"no finished uda runs with a matching source-only run under {args.runs}", file=sys.stderr)
        return 2
    for (dataset, protocol, batch, method), cells in sorted(gains.items()):
        what = "AdaBN - source-only" if method == "adabn" else f"{method} - source-only"
        print(f"\n{dataset}, batch {batch} per domain, domain_batches={protocol}: target accuracy, {what} "
              "(points; mean over seeds)\n")
        print("\n".join(_table(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
