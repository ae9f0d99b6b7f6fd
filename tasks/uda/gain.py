"""What adaptation bought over the source-only baseline, per norm and pair, from finished run records.

    python -m tasks.uda.gain runs/uda_quick

For every norm and source -> target pair that has a finished source-only run and
a finished run of another method (same benchmark, per-domain batch, protocol and
seed), prints the difference in target accuracy in points: the method minus
source-only, AdaBN minus source-only (where AdaBN applies), and for DANN and CDAN
also the method with AdaBN minus source-only. Runs pair by the per-domain batch
(``per_domain_batch_size``), not the record's ``batch_size``: a joint DANN pass
normalizes twice as many images as the source-only run it is compared with.
Each cell is the mean over seeds of the per-seed (paired) gains, with the 95%
t interval of that mean when there are two seeds or more. The numbers come from
the records alone, so DANN's gain (or loss) is measured, never assumed.
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

Key = tuple[str, str, int, str]  # dataset, domain batches, per-domain batch size, method
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


def per_domain_batch(record: dict) -> int:
    """Images per domain per step: the record's field, else (records before it) the old per-domain batch_size."""
    value = record.get("per_domain_batch_size", record.get("coordinates", {}).get("per_domain_batch_size"))
    return int(value if value is not None else record["batch_size"])


def _pairing_key(record: dict) -> tuple:
    return (record["dataset"], record["axis_value"], record["norm"], per_domain_batch(record),
            json.dumps(record["protocol"], sort_keys=True), record.get("selection", {}).get("rule"), record["seed"])


def collect_gains(root: Path) -> dict[Key, dict[Cell, list[float]]]:
    """(dataset, protocol, per-domain batch, method vs source-only) -> (norm, pair) -> gains in points, one per seed.

    A run pairs with the source-only run of the same benchmark, pair, norm, per-domain batch, protocol, selection
    rule and seed. Methods: the adapted method itself, ``adabn`` (source-only with AdaBN), ``<method>+adabn``.
    """
    base = {_pairing_key(r): r for r in _records(root) if r["coordinates"]["method"] == "source_only"}
    gains: dict[Key, dict[Cell, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in _records(root):
        ref = base.get(_pairing_key(r))
        if ref is None:
            continue
        cell = (_norm_order(r), r["norm_label"], float(r["axis_order"]), r["axis_label"])
        setting = (r["dataset"], r["protocol"].get("domain_batches", ""), per_domain_batch(r))
        method = r["coordinates"]["method"]
        if method != "source_only":
            gains[(*setting, method)][cell].append(100 * (r["test/target_acc"] - ref["test/target_acc"]))
        if "test/target_acc_adabn" in r:
            name = "adabn" if method == "source_only" else f"{method}+adabn"
            gains[(*setting, name)][cell].append(100 * (r["test/target_acc_adabn"] - ref["test/target_acc"]))
    return gains


def mean_and_ci95(values: list[float]) -> tuple[float, float | None]:
    """The mean and the half-width of its 95% t interval (None for one value)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, None
    from scipy.stats import t

    return mean, float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5


def _shown(values: list[float] | None) -> str:
    if values is None:
        return "–"
    mean, half = mean_and_ci95(values)
    return f"{mean:+.2f}" + (f" ± {half:.2f} (n={len(values)})" if half is not None else "")


def _table(cells: dict[Cell, list[float]]) -> list[str]:
    """Rows: norms in registry order, then by G; columns: pairs in axis order, then their average."""
    by_cell = {(norm, pair): values for (_, norm, _, pair), values in cells.items()}
    norms = [n for _, n in sorted({(c[0], c[1]) for c in cells})]
    pairs = [p for _, p in sorted({(c[2], c[3]) for c in cells})]
    lines = ["| Norm | " + " | ".join(pairs) + " | Avg. |", "|:--|" + "--:|" * (len(pairs) + 1)]
    for norm in norms:
        values = [statistics.mean(by_cell[(norm, p)]) if (norm, p) in by_cell else None for p in pairs]
        shown = [_shown(by_cell.get((norm, p))) for p in pairs]
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
        what = ("AdaBN - source-only" if method == "adabn" else
                f"{method.replace('+adabn', '')} with AdaBN - source-only" if method.endswith("+adabn")
                else f"{method} - source-only")
        print(f"\n{dataset}, batch {batch} per domain, domain_batches={protocol}: target accuracy, {what} "
              "(points; mean of the per-seed gains ± 95% t interval)\n")
        print("\n".join(_table(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
