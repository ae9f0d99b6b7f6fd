"""Fixtures the UDA run tests share: one Fashion-MNIST-M build per module, and no data root from the environment
(`pytestmark = pytest.mark.usefixtures("no_data_root")` in a module that needs it)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def fm_cache(tmp_path_factory) -> Path:
    """One Fashion-MNIST-M build for the module's runs (the cache would otherwise go to ~/.cache)."""
    return tmp_path_factory.mktemp("fashion_mnist_m")


@pytest.fixture
def no_data_root(monkeypatch) -> None:
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
