"""Hand-made records of all five tasks, shaped like what each task's run side writes.

The fields come from real records of shrunk quick runs of every task
(classification, adversarial and domain adaptation from the merged tasks; few-shot
and NAS from their branches): the declarations, table axes, coordinates, protocol,
selection, the few-shot per-episode file and the NAS genotype. Each record also
carries the summary columns the demo sweep declares for its task.

The grid (the numbers are chosen so every summary cell can be worked out by hand;
see test_report_summary.py):

- classification (resnet8, bs 2 and 128, seeds 0-2): BGN best at bs=2, BN best at
  bs=128; IN runs only here (n/a elsewhere); one LN seed failed at bs=2.
- nas (DARTS_V2 retrained, bs 8 and 32, one seed): GN best at bs=32; two searched
  cells (order=first) that the summary's `where` leaves out.
- adversarial (PGD-AT, resnet20, bs 2 and 32, seeds 0-2): LN diverged at bs=32.
- fewshot (ProtoNet, conv4, 5-way 1- and 5-shot, seeds 0-4): per-episode files with
  20 shared test episodes per setting.
- uda (DANN, lenet, both directions, seeds 0-2): LN ran one direction only.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from report_records import declare, make_record

SWEEP = "five"
NORMS = ("bn", "ln", "gn:num_groups=32", "bgn:num_groups=4")
FAILED, DIVERGED = "failed", "diverged"

# --- classification: test accuracy by (norm, batch size), seeds 0, 1, 2 -------------------------------
CLASSIFICATION = {
    ("bn", 2): [0.600, 0.620, 0.610], ("bn", 128): [0.920, 0.930, 0.925],
    ("in", 2): [0.700, 0.690, 0.710], ("in", 128): [0.880, 0.890, 0.870],
    ("ln", 2): [0.650, FAILED, 0.660], ("ln", 128): [0.900, 0.905, 0.910],
    ("gn:num_groups=32", 2): [0.720, 0.730, 0.710], ("gn:num_groups=32", 128): [0.910, 0.915, 0.905],
    ("bgn:num_groups=4", 2): [0.750, 0.740, 0.770], ("bgn:num_groups=4", 128): [0.915, 0.926, 0.919],
}
# --- nas: retrained test accuracy of the fixed DARTS_V2 cell, one seed --------------------------------
NAS = {
    ("bn", 8): 0.850, ("bn", 32): 0.880, ("ln", 8): 0.855, ("ln", 32): 0.860,
    ("gn:num_groups=32", 8): 0.870, ("gn:num_groups=32", 32): 0.890,
    ("bgn:num_groups=4", 8): 0.875, ("bgn:num_groups=4", 32): 0.885,
}
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
SEARCHED = {  # norm -> (genotype of the first-order search, retrained accuracy)
    "bn": ("Genotype(normal=[('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 2), "
           "('sep_conv_5x5', 3), ('sep_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 3)], "
           "normal_concat=[2, 3, 4, 5], reduce=[('skip_connect', 1), ('dil_conv_5x5', 0), ('avg_pool_3x3', 2), "
           "('max_pool_3x3', 0), ('dil_conv_5x5', 3), ('dil_conv_3x3', 0), ('dil_conv_5x5', 2), "
           "('sep_conv_3x3', 3)], reduce_concat=[2, 3, 4, 5])", 0.840),
    "bgn:num_groups=4": ("Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
                         "('sep_conv_3x3', 2), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
                         "('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), "
                         "('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1), "
                         "('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1)], "
                         "reduce_concat=range(2, 6))", 0.820),
}
# --- adversarial (PGD-AT): (robust, clean) accuracy by (norm, batch size), seeds 0, 1, 2 --------------
ADVERSARIAL = {
    ("bn", 2): [(0.600, 0.780), (0.610, 0.790), (0.590, 0.770)],
    ("bn", 32): [(0.700, 0.800), (0.710, 0.810), (0.705, 0.805)],
    ("ln", 2): [(0.550, 0.740), (0.560, 0.750), (0.545, 0.745)],
    ("ln", 32): [DIVERGED, DIVERGED, DIVERGED],
    ("gn:num_groups=32", 2): [(0.640, 0.770), (0.650, 0.775), (0.645, 0.780)],
    ("gn:num_groups=32", 32): [(0.690, 0.820), (0.700, 0.830), (0.695, 0.825)],
    ("bgn:num_groups=4", 2): [(0.660, 0.790), (0.670, 0.800), (0.650, 0.780)],
    ("bgn:num_groups=4", 32): [(0.720, 0.790), (0.735, 0.800), (0.725, 0.795)],
}
ROBUST_LABEL = "robust accuracy, autoattack-standard"
# --- few-shot (ProtoNet): each seed's mean episode accuracy by (norm, shots), seeds 0-4 -----------------
FEWSHOT = {
    ("bn", 1): [0.600, 0.610, 0.590, 0.620, 0.605], ("bn", 5): [0.750, 0.760, 0.755, 0.745, 0.765],
    ("ln", 1): [0.550, 0.560, 0.540, 0.555, 0.545], ("ln", 5): [0.700, 0.705, 0.710, 0.695, 0.690],
    ("gn:num_groups=32", 1): [0.580, 0.600, 0.590, 0.595, 0.585],
    ("gn:num_groups=32", 5): [0.740, 0.735, 0.745, 0.750, 0.730],
    ("bgn:num_groups=4", 1): [0.640, 0.630, 0.650, 0.645, 0.625],
    ("bgn:num_groups=4", 5): [0.780, 0.770, 0.790, 0.775, 0.785],
}
EPISODES = 20
QUERIES = 15
# --- domain adaptation (DANN): target accuracy by (norm, pair), seeds 0, 1, 2 ---------------------------
PAIRS = {0: ("fashion_mnist", "fashion_mnist_m", "F-MNIST→F-MNIST-M"), 1: ("fashion_mnist_m", "fashion_mnist",
                                                                         "F-MNIST-M→F-MNIST")}
UDA = {
    ("bn", 0): [0.40, 0.42, 0.41], ("bn", 1): [0.80, 0.82, 0.81],
    ("ln", 0): [0.35, 0.36, 0.37],
    ("gn:num_groups=32", 0): [0.45, 0.44, 0.46], ("gn:num_groups=32", 1): [0.78, 0.79, 0.80],
    ("bgn:num_groups=4", 0): [0.50, 0.49, 0.52], ("bgn:num_groups=4", 1): [0.83, 0.85, 0.84],
}

# The summary columns the demo sweep declares (one per task; classification keeps its two defaults).
SUMMARY = {
    "classification": [{"label": "classification, smallest batch", "axis": "min", "where": {}, "metric": "test/acc"},
                       {"label": "classification, largest batch", "axis": "max", "where": {}, "metric": "test/acc"}],
    "nas": [{"label": "NAS, DARTS_V2 retrained", "axis": "max", "where": {"genotype": "DARTS_V2"},
             "metric": "test/acc"}],
    "adversarial": [{"label": "adversarial, PGD-AT", "axis": "max", "where": {"method": "pgd_at"},
                     "metric": "test/robust_acc"}],
    "fewshot": [{"label": "few-shot, ProtoNet", "axis": "5-way 1-shot", "where": {"method": "protonet"},
                 "metric": "test/acc"}],
    "uda": [{"label": "domain adaptation, DANN", "axis": "average", "where": {"method": "dann"},
             "metric": "test/target_acc"}],
}


def _outcome(norm: str, batch: int, seed: int, outcome: Any, metrics: dict[str, float], **fields: Any) -> dict:
    if isinstance(outcome, str):
        return make_record(norm, batch, seed, acc=None, status=outcome, sweep=SWEEP, **fields)
    return make_record(norm, batch, seed, acc=None, sweep=SWEEP, **fields, **metrics)


def classification_record(norm: str, batch: int, seed: int, outcome: Any) -> dict:
    fields = {"model": "resnet8", "summary_columns": SUMMARY["classification"],
              "metric_declarations": [declare("test/acc", "test accuracy", primary=True),
                                      declare("test/acc5", "top-5 test accuracy")],
              "selection": {"rule": "last", "monitor": None, "mode": "max"}}
    metrics = {} if isinstance(outcome, str) else {"test/acc": outcome, "test/acc5": min(1.0, outcome + 0.07)}
    return _outcome(norm, batch, seed, outcome, metrics, **fields)


def nas_record(norm: str, batch: int, seed: int, acc: float, genotype: str = DARTS_V2,
               searched: bool = False) -> dict:
    fields: dict[str, Any] = {
        "task": "nas", "model": "darts", "coordinates": {"order": "first"} if searched else {"genotype": "DARTS_V2"},
        "metric_declarations": [declare("test/acc", "test accuracy of the retrained network", primary=True),
                                declare("retrain/params_m", "parameters of the final network (millions, auxiliary "
                                        "head excluded)", direction="min", unit="", kind="cost"),
                                declare("retrain/wall_time_s", "retrain wall time", direction="min", unit="seconds")],
        "selection": {"rule": "last", "monitor": None, "mode": "max"}, "summary_columns": SUMMARY["nas"],
        "protocol": {"supernet_affine": False, "retrain_batch": "search batch"} if searched else {},
        "genotype": genotype, "genotype_name": "searched" if searched else "DARTS_V2",
        "genotype_figure": "genotype.png", "num_skip_connects": genotype.split("normal_concat")[0].count("skip"),
        "retrain_batch_size": batch, "network_norm": norm,
    }
    metrics = {"test/acc": acc, "retrain/params_m": 0.3327, "retrain/wall_time_s": 38.5}
    return _outcome(norm, batch, seed, acc, metrics, **fields)


def adversarial_record(norm: str, batch: int, seed: int, outcome: Any) -> dict:
    fields = {
        "task": "adversarial", "coordinates": {"method": "pgd_at"}, "summary_columns": SUMMARY["adversarial"],
        "metric_declarations": [  # as tasks/adversarial declares them: one table, in this column order
            declare("test/acc", "clean test accuracy", group="robustness", short="Clean"),
            declare("test/fgsm_acc", "FGSM accuracy", group="robustness", short="FGSM"),
            declare("test/pgd20_acc", "PGD-20 accuracy", group="robustness", short="PGD-20"),
            declare("test/robust_acc", ROBUST_LABEL, primary=True, group="robustness", short="AutoAttack")],
        "selection": {"rule": "best robust validation accuracy (PGD-10)", "monitor": "val/robust_acc", "mode": "max"},
        "protocol": {"attack_mode": "eval", "epsilon": 0.1, "train_attack": "pgd-7 step 0.025",
                     "robust_attack": "autoattack-standard", "robust_samples": 1000},
    }
    metrics = {}
    if not isinstance(outcome, str):
        robust, clean = outcome
        metrics = {"test/robust_acc": robust, "test/acc": clean, "test/pgd20_acc": robust + 0.03,
                   "test/fgsm_acc": robust + 0.08}
    return _outcome(norm, batch, seed, outcome, metrics, **fields)


def episode_accuracies(norm: str, shots: int, seed: int, mean: float) -> list[float]:
    """Shared episode difficulty plus run-specific noise, both centred, so the run's mean is `mean`."""
    difficulty = [0.12 * math.sin(1.7 * j + shots) for j in range(EPISODES)]
    salt = sum(map(ord, norm)) + 7 * seed
    noise = [0.03 * (((j * (3 + salt)) % 7) - 3) / 3 for j in range(EPISODES)]
    d_mean, n_mean = sum(difficulty) / EPISODES, sum(noise) / EPISODES
    return [mean + d - d_mean + e - n_mean for d, e in zip(difficulty, noise)]


def episodes_sha256(shots: int) -> str:
    """Episodes are fixed by the data seed and the episode shape: one hash per setting, for every norm and seed."""
    return hashlib.sha256(f"fashion_mnist_rot/test/5w{shots}s/data-seed-0".encode()).hexdigest()


def episode_file(accuracies: list[float], sha: str) -> str:
    rows = ["set,episode,accuracy,episodes_sha256"]
    rows += [f"test,{j},{acc!r},{sha}" for j, acc in enumerate(accuracies)]
    return "\n".join(rows) + "\n"


def fewshot_record(norm: str, shots: int, seed: int, accuracies: list[float]) -> dict:
    mean = sum(accuracies) / len(accuracies)
    std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / len(accuracies))
    fields = {
        "task": "fewshot", "dataset": "fashion_mnist_rot", "model": "conv4",
        "coordinates": {"method": "protonet", "ways": 5, "shots": shots},
        "table_axis": {"key": "ways_shots", "label": "ways/shots", "coordinates": ["ways", "shots"],
                       "batch_size_follows": True},
        "axis_value": f"5w{shots}s", "axis_label": f"5-way {shots}-shot", "axis_order": 5000 + shots,
        "metric_declarations": [declare("test/acc", "mean accuracy over the fixed test episodes", primary=True,
                                        interval="test/acc_ci95")],
        "selection": {"rule": "best mean accuracy on the fixed validation episodes", "monitor": "val/acc",
                      "mode": "max"},
        "protocol": {"forward": "joint", "norm_mode": "transductive", "queries": QUERIES, "test_queries": QUERIES},
        "summary_columns": SUMMARY["fewshot"], "episode_file": "test_episodes.csv",
        "test_episodes": EPISODES, "test_episodes_sha256": episodes_sha256(shots), "meta_batch": 1,
    }
    metrics = {"test/acc": mean, "test/acc_ci95": 1.96 * std / math.sqrt(len(accuracies))}
    return _outcome(norm, 5 * (shots + QUERIES), seed, mean, metrics, **fields)


def uda_record(norm: str, pair: int, seed: int, target: float) -> dict:
    source, target_domain, label = PAIRS[pair]
    fields = {
        "task": "uda", "dataset": "fmnist_fmnistm", "model": "lenet",
        "coordinates": {"method": "dann", "source": source, "target": target_domain},
        "table_axis": {"key": "pair", "label": "source -> target", "coordinates": ["source", "target"],
                       "batch_size_follows": False},
        "axis_value": f"{source}->{target_domain}", "axis_label": label, "axis_order": float(pair),
        "axis_average": True, "summary_columns": SUMMARY["uda"],
        "metric_declarations": [declare("test/target_acc", "target accuracy", primary=True),
                                declare("test/source_acc", "source accuracy")],
        "selection": {"rule": "best source validation accuracy", "monitor": "val/source_acc", "mode": "max"},
        "protocol": {"domain_batches": "joint"},
    }
    return _outcome(norm, 32, seed, target, {"test/target_acc": target, "test/source_acc": 0.9}, **fields)


def _write(root: Path, record: dict, files: dict[str, str] | None = None) -> Path:
    run_dir = root / SWEEP / record["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(f"task: {record['task']}\n")
    for name, text in (files or {}).items():
        (run_dir / name).write_text(text)
    (run_dir / "result.json").write_text(json.dumps(record, indent=1))
    return run_dir


def write_five_task_runs(root: Path) -> Path:
    """Write the whole grid under root/five/<run_id>/; returns root."""
    for (norm, batch), outcomes in CLASSIFICATION.items():
        for seed, outcome in enumerate(outcomes):
            _write(root, classification_record(norm, batch, seed, outcome))
    for (norm, batch), acc in NAS.items():
        _write(root, nas_record(norm, batch, 0, acc))
    for norm, (genotype, acc) in SEARCHED.items():
        _write(root, nas_record(norm, 8, 0, acc, genotype, searched=True))
    for (norm, batch), outcomes in ADVERSARIAL.items():
        for seed, outcome in enumerate(outcomes):
            _write(root, adversarial_record(norm, batch, seed, outcome))
    for (norm, shots), means in FEWSHOT.items():
        for seed, mean in enumerate(means):
            accuracies = episode_accuracies(norm, shots, seed, mean)
            _write(root, fewshot_record(norm, shots, seed, accuracies),
                   {"test_episodes.csv": episode_file(accuracies, episodes_sha256(shots))})
    for (norm, pair), values in UDA.items():
        for seed, target in enumerate(values):
            _write(root, uda_record(norm, pair, seed, target))
    return root
