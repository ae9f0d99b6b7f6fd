"""The one test that lets W&B write: an offline run inside the run directory, with flat config and group."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.classification.task import CLASSIFICATION
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]


def test_offline_wandb_run_is_written_into_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))  # no ~/.netrc: no credentials, so mode auto -> offline
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    monkeypatch.setenv("NORMBENCH_WANDB", "1")
    cfg = parse_config(
        CLASSIFICATION,
        ["--config", str(REPO / "configs/classification/test.yaml"), "--out_dir", str(tmp_path / "runs"),
         "--norm", "bgn:num_groups=2", "--sweep", "wb", "--trainer.epochs", "1"],
        raise_errors=True,
    )
    outcome = execute(cfg, CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    record = json.loads((outcome.run_dir / "result.json").read_text())
    assert record["wandb_mode"] == "offline"
    assert record["wandb_group"] == "classification-fashion_mnist-resnet8-bgn:num_groups=2-bs8"
    offline = list((outcome.run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and offline[0].name.endswith(record["wandb_run_id"])
    # wandb's transaction log (protobuf: keys as plain strings, values as JSON): config, group and metrics
    log = next(offline[0].glob("run-*.wandb")).read_bytes()
    for expected in (b"norm_label", b'"BGN (G=2)"', b"norm.num_groups", b"optim.base_lr", b'"wb"',
                     record["wandb_group"].encode(), b"train/loss", b"val/acc", b"test/acc"):
        assert expected in log, expected
    assert log.count(b"train/loss") >= 4  # logged every 5 of the 22 steps
