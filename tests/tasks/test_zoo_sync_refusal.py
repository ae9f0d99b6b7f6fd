"""The new registry norms cannot be synchronized, and a run asking for it is refused before it starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from normlayers import get_norm_entry, resolve_norm
from tasks.classification.task import CLASSIFICATION
from tasks.cli import main
from tasks.runner.errors import ConfigError
from tasks.runner.parse import parse_config
from tasks.runner.prepare import _syncs_on_cpu, check_trainer

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")
NEW = ["brn", "frn", "evonorm_b0", "evonorm_s0", "sn"]


@pytest.mark.parametrize("norm", NEW)
def test_check_trainer_refuses_sync_norm(tmp_path: Path, norm: str) -> None:
    assert not get_norm_entry(norm).syncable
    cfg = parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--norm", norm,
                                        "--trainer.sync_norm", "true"], raise_errors=True)
    why = ("its batch statistics have no synchronized implementation" if get_norm_entry(norm).uses_batch_stats
           else "it has no batch statistics to synchronize")
    with pytest.raises(ConfigError, match=re.escape(f"trainer.sync_norm=true with norm {resolve_norm(norm).label}: {why}")):
        check_trainer(cfg, resolve_norm(norm))


@pytest.mark.parametrize("norm", ["brn", "sn"])
def test_the_cli_refuses_it_in_one_line_before_writing_anything(tmp_path: Path, capsys, norm: str) -> None:
    try:
        code = main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--norm", norm,
                     "--trainer.sync_norm", "true"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and "its batch statistics have no synchronized implementation" in err, err
    assert "Traceback" not in err and not any(tmp_path.iterdir())


def test_only_bgn_is_judged_to_sync_on_cpu() -> None:
    assert _syncs_on_cpu(resolve_norm("bgn")) and not _syncs_on_cpu(resolve_norm("bn"))
    assert not any(_syncs_on_cpu(resolve_norm(n)) for n in NEW)
