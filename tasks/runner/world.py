"""Process topology of a run, known before Lightning starts."""

from __future__ import annotations

import os

from ..config import RunConfig


def world_size_of(cfg: RunConfig) -> int:
    """Number of training processes the config asks for (devices x nodes)."""
    devices = cfg.trainer.devices if cfg.trainer.devices > 0 else 1
    return devices * max(1, cfg.trainer.num_nodes)


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
