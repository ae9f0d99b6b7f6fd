"""A 2-process DDP run on CPU (gloo) with synchronized BGN, launched like a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tasks.data.splits import subset_indices
from tasks.runner.outcomes import item_ids_hash, read_outcomes

REPO = Path(__file__).resolve().parents[2]


def test_two_process_ddp_run_with_synchronized_bgn(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "tasks.cli", "run", "classification",
        "--config", str(REPO / "configs/classification/test.yaml"), "--out_dir", str(tmp_path),
        "--norm", "bgn:num_groups=2", "--batch_size", "4", "--trainer.epochs", "1",
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.sync_norm", "true", "--trainer.threads", "1",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    run_dirs = list(tmp_path.iterdir())
    assert len(run_dirs) == 1  # rank 1 wrote nothing of its own
    record = json.loads((run_dirs[0] / "result.json").read_text())
    assert record["status"] == "finished"
    assert record["world_size"] == 2 and record["global_batch_size"] == 8 and record["sync_norm"] is True
    # 177 training images, 2 processes x 4 per step, drop_last: 22 steps, each process sees half the data
    assert record["steps"] == 22 and record["train_images_per_s"] > 0
    assert 0 <= record["test/acc"] <= 1 and 0 <= record["last/val/acc"] <= 1
    state = torch.load(run_dirs[0] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    group_stats = [k for k in state if k.endswith("stats.running_mean")]
    assert group_stats and all(state[k].shape == (2,) for k in group_stats)
    assert all(state[k.replace("running_mean", "num_batches_tracked")].item() == 22 for k in group_stats)
    # per-item outcomes gathered from both processes: every test image once, in item order, as one process scores them
    (test,) = read_outcomes(run_dirs[0] / "outcomes.json")
    assert test.n == 100 and test.item_ids_hash == item_ids_hash("fashion_mnist/test", subset_indices(10000, 0.01, 0).tolist())
    assert abs(test.columns["test/acc"].mean() - record["test/acc"]) <= 1e-6  # 50 images per process: no padding
