"""Same seed, same batches, whatever the norm: the data stream's seed, and the hash that proves it.

Pairing runs by seed is only fair when one seed gives every norm the same training batches:
the same data order, the same augmentation draws, the same few-shot tasks. Building a
network draws its initial weights from the global generators, and how many numbers it
draws may depend on the norm (a norm with parameters of its own to initialise, a
convolution that gets a bias only where the norm has none). So the runner seeds a stage
twice: with the run's seed before the task builds its module and data (initial weights),
and, once both are built, with :func:`data_stream_seed` (the run's seed and the stage's
name alone) for everything after: the loaders' shuffling, augmentation on the device,
learn2learn's task sampling (Python's ``random``), worker seeds. What the training steps
themselves draw (a PGD random start) comes from the same stream; it is the same for every
norm, since no registry norm draws random numbers in its forward pass.

:class:`TrainOrderHash` is the proof in the record: a SHA-256 over the first training
epoch's first :data:`MAX_BATCHES` batches exactly as the training step receives them
(after the transfer and the on-device augmentation). Two runs with equal
``train_order_hash`` saw the same images in the same order with the same augmentations.
"""

from __future__ import annotations

import hashlib
from typing import Any

import lightning as L
import torch

__all__ = ["MAX_BATCHES", "TrainOrderHash", "data_stream_seed", "seed_data_stream", "batch_digest"]

MAX_BATCHES = 8  # enough to pin the order and the draws; a few small hashes per run cost nothing measurable


def data_stream_seed(seed: int, stage: str) -> int:
    """The seed of a stage's data stream: a function of the run's seed and the stage's name only (32 bits)."""
    return int.from_bytes(hashlib.sha256(f"normbench-data:{seed}:{stage}".encode()).digest()[:4], "big")


def seed_data_stream(seed: int, stage: str) -> int:
    """Seed torch (CPU and CUDA), Python's ``random`` and NumPy for the stage's data stream; returns the seed."""
    value = data_stream_seed(seed, stage)
    L.seed_everything(value, workers=True, verbose=False)
    return value


def _feed(h: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        h.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            h.update(f"K{key!s}".encode())
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for item in value:
            _feed(h, item)
    else:
        h.update(f"V{value!r}".encode())


def batch_digest(batch: Any) -> str:
    """SHA-256 of a batch's tensors (dtype, shape, bytes), nested lists, tuples and dicts in order."""
    h = hashlib.sha256()
    _feed(h, batch)
    return h.hexdigest()


class TrainOrderHash(L.Callback):
    """Hashes the first :data:`MAX_BATCHES` training batches of the stage's first epoch (rank 0's).

    The per-batch digests are kept in checkpoints, so a run resumed after its first epoch
    still reports the hash of that epoch.
    """

    def __init__(self, max_batches: int = MAX_BATCHES) -> None:
        self.max_batches = max_batches
        self.digests: list[str] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.current_epoch == 0 and batch_idx == len(self.digests) and batch_idx < self.max_batches:
            self.digests.append(batch_digest(batch))

    def value(self) -> str | None:
        if not self.digests:
            return None
        return hashlib.sha256("".join(self.digests).encode()).hexdigest()[:16]

    def record_fields(self, prefix: str = "") -> dict[str, Any]:
        """``train_order_hash`` and ``train_order_batches`` (also ``<stage>/...`` when ``prefix`` is given)."""
        value = self.value()
        if value is None:
            return {}
        fields = {"train_order_hash": value, "train_order_batches": len(self.digests)}
        if prefix:
            fields.update({f"{prefix}{k}": v for k, v in list(fields.items())})
        return fields

    def state_dict(self) -> dict[str, Any]:
        return {"digests": list(self.digests)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.digests = list(state.get("digests", []))
