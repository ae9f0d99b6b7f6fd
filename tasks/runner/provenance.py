"""Where a result came from: code version, libraries, machine."""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def device_name(accelerator: str | None = None) -> str:
    if torch.cuda.is_available() and accelerator not in ("cpu",):
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return "cpu"


def provenance(accelerator: str | None = None) -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "host": socket.gethostname(),
        "device": device_name(accelerator),
        "git_commit": commit,
        "git_dirty": (bool(status) if status is not None else None),
        "normbench_version": _version("normbench"),
        "torch_version": torch.__version__,
        "lightning_version": _version("lightning"),
        "python_version": platform.python_version(),
    }
