"""Test-wide settings: deterministic CPU runs, no network, W&B off, and no silent passes.

``NORMBENCH_STRICT_TESTS=1`` (set by CI) turns a run with no tests, or with any
skipped test, into a failure: a skipped check is a check not done.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("NORMBENCH_STRICT_TESTS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if skipped or passed == 0:
        print(f"\nNORMBENCH_STRICT_TESTS: {passed} passed, {skipped} skipped; strict runs need >0 passed and 0 skipped")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def one_thread():
    """Tiny networks and tensors: one torch thread is faster, and a shared CPU is not oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
