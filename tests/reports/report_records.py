"""Hand-made run records for the reporter tests (docs/run-record.md).

`make_record` writes schema 2 by default (`schema=1` writes the old format) and
fills every field with a realistic default, so a test states only what it is
about. The builders below give the records of the other tasks (adversarial,
few-shot, domain adaptation) their declared axes and metrics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_NORMS = {
    # norm spec -> (registry name, paper label, group parameter)
    "bn": ("bn", "BN", None),
    "in": ("in", "IN", None),
    "ln": ("ln", "LN", None),
    "gn:num_groups=32": ("gn", "GN (G=32)", 32),
    "pn": ("pn", "PN", None),
    "bgn:num_groups=1": ("bgn", "BGN (G=1)", 1),
    "bgn:num_groups=4": ("bgn", "BGN (G=4)", 4),
    "bgn:num_groups=16": ("bgn", "BGN (G=16)", 16),
}

BATCH_AXIS = {"key": "batch_size", "label": "batch size per device", "coordinates": []}


def declare(name: str, label: str | None = None, direction: str = "max", unit: str = "fraction",
            primary: bool = False, interval: str | None = None, **optional: Any) -> dict[str, Any]:
    """One entry of `metric_declarations`; `optional`: group, short, kind."""
    return {"name": name, "label": label or name, "direction": direction, "unit": unit,
            "primary": primary, "interval": interval, **optional}


ACC = declare("test/acc", "test accuracy", primary=True)


def _run_id(record: dict[str, Any]) -> str:
    """Unique per grid point and seed, so two coordinates never share a folder."""
    parts = [record["task"], record["dataset"], record["norm"].replace(":", "_")]
    parts += [f"{k}={v}" for k, v in sorted(record.get("coordinates", {}).items())]
    parts.append(f"bs{record['batch_size']}")
    if record.get("world_size", 1) != 1:
        parts.append(f"ws{record['world_size']}")
    if record.get("precision", "32-true") != "32-true":
        parts.append(str(record["precision"]))
    parts.append(f"s{record['seed']}")
    return "-".join(parts)


def make_record(norm_spec: str = "bn", batch_size: int = 2, seed: int = 0, acc: float | None = 0.9,
                status: str = "finished", schema: int = 2, **overrides: Any) -> dict[str, Any]:
    """A record of `schema` (1 or 2); `acc` is test/acc (None: absent); overrides replace fields.

    For schema 2, primary_metric/primary_mode/report_metrics are derived from the
    (possibly overridden) metric_declarations unless given, as the run side does.
    """
    norm = norm_spec
    name, label, groups = _NORMS[norm]
    task, dataset = overrides.get("task", "classification"), overrides.get("dataset", "fashion_mnist")
    record: dict[str, Any] = {
        "schema": schema,
        "sweep": "quick", "task": task, "dataset": dataset, "model": "resnet20",
        "norm": norm, "norm_name": name, "norm_label": label, "norm_num_groups": groups,
        "norm_args": {} if groups is None else {"num_groups": groups},
        "uses_batch_stats": name in ("bn", "bgn"), "batch_size": batch_size, "world_size": 1,
        "global_batch_size": batch_size, "sync_norm": False, "seed": seed, "profile": "quick",
        "epochs": 1, "precision": "32-true", "status": status,
        "error": None if status == "finished" else f"run {status}",
        "primary_metric": "test/acc", "primary_mode": "max", "report_metrics": ["test/acc"],
        "epochs_completed": 1, "steps": 100, "wall_time_s": 12.5, "train_images_per_s": 80.0,
        "started_at": "2026-11-29T12:00:00Z", "finished_at": "2026-11-29T12:00:12Z",
        "host": "test", "device": "cpu", "git_commit": None, "git_dirty": None,
        "normbench_version": "0.1.0", "torch_version": "2.5.0", "lightning_version": "2.4.0",
        "python_version": "3.11.7", "wandb_run_id": None, "wandb_group": None,
    }
    if schema == 2:
        record.update({
            "coordinates": {}, "table_axis": BATCH_AXIS, "axis_value": batch_size,
            "axis_label": f"bs={batch_size}", "axis_order": batch_size, "axis_average": False,
            "metric_declarations": [ACC],
            "selection": {"rule": "best val/acc", "monitor": "val/acc", "mode": "max"}, "selected_epoch": 0,
            "protocol": {}, "batch_size_meaning": "images per device per step", "images_per_step": batch_size,
        })
    if acc is not None:
        record["test/acc"] = acc
    record.update(overrides)
    if schema == 2:
        declared = record["metric_declarations"]
        primary = next((d for d in declared if isinstance(d, dict) and d.get("primary")), None)
        if primary is not None:
            derived = {"primary_metric": primary["name"], "primary_mode": primary["direction"],
                       "report_metrics": [d["name"] for d in declared]}
            record.update({k: v for k, v in derived.items() if k not in overrides})
    if "run_id" not in overrides:
        record["run_id"] = _run_id(record)
    return record


# --- the other tasks: what their run side declares (hand-made, not imported from tasks) ---

def adversarial_fields(method: str) -> dict[str, Any]:
    """Adversarial training: the method is a coordinate; the accuracy drop is declared `min`."""
    return {
        "task": "adversarial", "sweep": "adv", "coordinates": {"method": method},
        "metric_declarations": [
            declare("test/autoattack_acc", "AutoAttack accuracy", primary=True),
            declare("test/acc", "clean accuracy"),
            declare("test/acc_drop", "clean minus AutoAttack accuracy", direction="min", unit="percent"),
        ],
        "selection": {"rule": "best val/robust_acc", "monitor": "val/robust_acc", "mode": "max"},
        "protocol": {"attack_mode": "eval"},
    }


FEWSHOT_AXIS = {"key": "ways_shots", "label": "ways/shots", "coordinates": ["ways", "shots"]}
EPISODE_ACC = declare("test/acc", "mean episode accuracy", primary=True, interval="test/acc_ci95")


def fewshot_fields(ways: int, shots: int, ci95: float | None, method: str = "protonet") -> dict[str, Any]:
    """Few-shot: the ways/shots axis, and an accuracy with each run's 95% CI over test episodes."""
    fields: dict[str, Any] = {
        "task": "fewshot", "sweep": "fewshot", "dataset": "fashion_mnist_rot", "model": "conv4",
        "coordinates": {"method": method, "ways": ways, "shots": shots}, "table_axis": FEWSHOT_AXIS,
        "axis_value": f"{ways}w{shots}s", "axis_label": f"{ways}-way {shots}-shot", "axis_order": ways * 100 + shots,
        "metric_declarations": [EPISODE_ACC], "protocol": {"norm_mode": "transductive"},
        "batch_size_meaning": "episodes per device per step",
    }
    if ci95 is not None:
        fields["test/acc_ci95"] = ci95
    return fields


PAIR_AXIS = {"key": "pair", "label": "source -> target", "coordinates": ["source", "target"]}
PAIRS = {  # (source, target) -> (column label, axis order)
    ("fashion_mnist", "fashion_mnist_m"): ("F-MNIST→F-MNIST-M", 0),
    ("fashion_mnist_m", "fashion_mnist"): ("F-MNIST-M→F-MNIST", 1),
}


def uda_fields(source: str, target: str, method: str = "dann") -> dict[str, Any]:
    """Domain adaptation: the source -> target axis, averaged over pairs; selection on source data."""
    label, order = PAIRS[(source, target)]
    return {
        "task": "uda", "sweep": "uda", "model": "lenet",
        "coordinates": {"method": method, "source": source, "target": target}, "table_axis": PAIR_AXIS,
        "axis_value": f"{source}->{target}", "axis_label": label, "axis_order": order, "axis_average": True,
        "metric_declarations": [declare("test/target_acc", "target accuracy", primary=True)],
        "selection": {"rule": "best source val/acc", "monitor": "val/source_acc", "mode": "max"},
        "protocol": {"domain_batches": "joint"},
    }


GOLDEN_DIR = Path(__file__).parent / "golden"


def golden(name: str, text: str) -> str:
    """The golden file's text; with NORMBENCH_UPDATE_GOLDEN=1 set, first rewrite it from `text` (review the diff)."""
    path = GOLDEN_DIR / name
    if os.environ.get("NORMBENCH_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")
