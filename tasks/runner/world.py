"""Process topology of a run, known before Lightning starts: devices, world size, rank.

``trainer.devices: -1`` and ``auto`` are resolved here to the real number of
GPUs, so the record's world size, the global batch and the learning-rate
scaling that depend on it agree with what Lightning will launch, and the
Trainer gets the resolved number.
"""

from __future__ import annotations

import os

import torch

from .config import RunConfig, TrainerConfig
from .errors import ConfigError

__all__ = ["gpu_count", "uses_gpus", "resolve_devices", "world_size_of", "is_rank_zero"]


def gpu_count() -> int:
    """Visible CUDA devices (a function, so tests can pretend to have GPUs)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def uses_gpus(trainer: TrainerConfig) -> bool:
    return trainer.accelerator in ("gpu", "cuda") or (trainer.accelerator == "auto" and gpu_count() > 0)


def resolve_devices(trainer: TrainerConfig) -> int:
    """Devices per node as a number; -1 and auto become the visible GPU count.

    On CPUs, ``auto`` is one process (as in Lightning) and -1 is refused: there
    is no "every device" for Lightning to launch.
    """
    devices = trainer.devices
    if devices not in (-1, "auto"):
        return int(devices)
    if uses_gpus(trainer):
        count = gpu_count()
        if count == 0:
            raise ConfigError(f"trainer.devices={devices} with accelerator {trainer.accelerator}: no GPU is visible")
        return count
    if devices == "auto":
        return 1
    raise ConfigError(
        f"trainer.devices=-1 means every visible GPU, but this run uses the CPU (accelerator "
        f"{trainer.accelerator}, {gpu_count()} GPUs visible); give a number of processes, e.g. --trainer.devices 1"
    )


def world_size_of(cfg: RunConfig) -> int:
    """Number of training processes the config asks for (devices x nodes)."""
    return resolve_devices(cfg.trainer) * cfg.trainer.num_nodes


def is_rank_zero() -> bool:
    """True in the process that writes run files: global rank 0, or the only process.

    Read from the environment that torchrun, SLURM and Lightning's launcher set,
    so it is right before the Trainer exists.
    """
    env = os.environ
    if env.get("RANK", "").isdigit():
        return int(env["RANK"]) == 0
    if env.get("LOCAL_RANK", "").isdigit():
        return int(env["LOCAL_RANK"]) == 0 and env.get("NODE_RANK", "0") in ("", "0")
    if env.get("SLURM_PROCID", "").isdigit() and env.get("SLURM_NTASKS", "1") != "1":
        return int(env["SLURM_PROCID"]) == 0
    return True
