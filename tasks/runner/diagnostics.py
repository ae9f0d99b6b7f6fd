"""The norm diagnostics callback: how noisy and how confused each norm layer's statistics are during training.

Enabled with ``--diagnostics.norm_stats true`` (docs/diagnostics.md). At a few
training steps it runs a fixed probe set of training images through the
network, in chunks of the run's normalization batch and in the modes training
uses, so every chunk is normalized exactly as a training batch is. Forward
hooks see each registry norm layer's input; per chunk, :mod:`.norm_stats` lays
it out by the statistics the registry entry's pooling declares. The pooled
moments over all chunks are the population (the layer input's distribution
under training-mode normalization, over the probe); each chunk's batch moments
are compared with them (noise), and each statistic's sum of squares is split
into between-channel and within-channel parts (confusion).

The probe must not change training: it runs without gradients, and every
buffer (running statistics, counters), every module's train/eval flag and the
torch, Python and NumPy random states are restored afterwards. Results go to
``norm_stats.json`` in the run directory (``norm_stats-<stage>.json`` for tasks
with several stages) and, summarized, into the record (``diagnostics/...``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from normlayers import find_norm_layers
from normlayers.pooling import pooling_groups

from .config import DiagnosticsConfig, RunConfig
from .errors import ConfigError
from .norm_stats import chunk_stats, confusion, geometric_mean, noise, pooled_population
from .record import write_json_atomic

__all__ = ["NormDiagnostics", "check_diagnostics", "default_probe", "planned_steps", "preserved_state",
           "stats_file_name", "RECORD_PREFIX"]

log = logging.getLogger("normbench")
RECORD_PREFIX = "diagnostics/"
FILE_SCHEMA = 1


def stats_file_name(stage: str, multi_stage: bool) -> str:
    return f"norm_stats-{stage}.json" if multi_stage else "norm_stats.json"


def check_diagnostics(cfg: RunConfig, normalization_batch: int, reason: str | None = None) -> None:
    """Refuse diagnostics the task cannot measure (``reason``: its ``diagnostics_support``) and a probe too small
    to hold two normalization batches (noise needs a population beyond one)."""
    d = cfg.diagnostics
    if d.norm_stats and reason:
        raise ConfigError(f"diagnostics.norm_stats=true: {reason}")
    if d.norm_stats and d.probe_size < 2 * normalization_batch:
        raise ConfigError(f"diagnostics.probe_size={d.probe_size} is too small: the probe pass needs at least two "
                          f"normalization batches of {normalization_batch} images ({2 * normalization_batch})")


def planned_steps(cfg: DiagnosticsConfig, total: int) -> list[int]:
    """Training steps (batches done) after which to measure: ``cfg.steps`` within the run, or ``points`` spread."""
    if cfg.steps:
        return sorted({s for s in cfg.steps if s <= total})
    if total <= 0:
        return [0]
    return sorted({max(1, round(total * i / cfg.points)) for i in range(1, cfg.points + 1)})


def default_probe(module: L.LightningModule, datamodule: Any, size: int, seed: int) -> tuple[nn.Module, Tensor]:
    """``module.net`` and ``size`` fixed images of ``datamodule.train_set`` (a tensor data set), un-augmented.

    The images are the first ``size`` of a permutation drawn from a generator of
    its own (the global random state is not touched), so every run on the same
    data configuration probes the same images.
    """
    from ..data.tensor_data import BatchTransform, TensorImageDataset

    net = getattr(module, "net", None)
    train_set = getattr(datamodule, "train_set", None)
    transform = getattr(datamodule, "transform", None)
    if not (isinstance(net, nn.Module) and isinstance(train_set, TensorImageDataset)
            and isinstance(transform, BatchTransform)):
        raise NotImplementedError("the default probe needs module.net, datamodule.train_set (TensorImageDataset) and "
                                  "datamodule.transform (BatchTransform); override Task.diagnostics_probe")
    if len(train_set) < size:
        raise ConfigError(f"diagnostics.probe_size={size} exceeds the {len(train_set)} training images")
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))[:size]
    return net, transform(train_set.images.index_select(0, order), train=False)


@contextlib.contextmanager
def preserved_state(net: nn.Module) -> Iterator[None]:
    """Restore ``net``'s buffers (the same tensor objects, their values), train/eval flags and the RNG states."""
    buffers = [(m, name, b, b.detach().clone()) for m in net.modules() for name, b in m._buffers.items()
               if b is not None]
    modes = [(m, m.training) for m in net.modules()]
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    try:
        yield
    finally:
        with torch.no_grad():
            for module, name, tensor, saved in buffers:
                module._buffers[name] = tensor  # a layer may have replaced the object
                tensor.copy_(saved)
        for module, mode in modes:
            module.training = mode
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        if "cuda" in rng:
            torch.cuda.set_rng_state_all(rng["cuda"])


class _LayerStats:
    """One (layer, pooling) pair's accumulators over the chunks of one probe pass."""

    def __init__(self, name: str, module: nn.Module, pooling: Any) -> None:
        self.name, self.module, self.pooling = name, module, pooling
        self.means: list[Tensor] = []
        self.stds: list[Tensor] = []
        self.confusions: list[float] = []
        self.shape: list[int] = []
        self.groups = 0
        self.elements = 0
        self.statistics = 0
        self.mixes = False

    def add(self, x: Tensor) -> None:
        self.shape = list(x.shape)
        self.groups = pooling_groups(self.pooling, self.module, int(x.shape[1]))
        stats = chunk_stats(x, self.pooling, self.groups)
        self.elements, self.statistics, self.mixes = stats.elements, stats.statistics, stats.mixes_channels
        if self.pooling.over_batch:
            self.means.append(stats.mean.cpu())
            self.stds.append(stats.std.cpu())
        if self.mixes:
            self.confusions.append(confusion(stats))

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "role": self.pooling.role, "pooling": self.pooling.metadata(), "shape": self.shape,
            "groups": self.groups, "elements_per_stat": self.elements, "stats_per_batch": self.statistics,
            "mixes_channels": self.mixes, "noise_mean": None, "noise_std": None,
            "confusion": 0.0,  # statistics of one channel each: no between-channel part, exactly
        }
        if self.means:
            means, stds = torch.stack(self.means), torch.stack(self.stds)
            pop_mean, pop_std = pooled_population(means, stds)
            nm, ns, skipped = noise(means, stds, pop_mean, pop_std)
            out.update(noise_mean=_finite(nm), noise_std=_finite(ns), constant_stats=skipped)
        if self.mixes:
            shares = [s for s in self.confusions if math.isfinite(s)]
            out["confusion"] = sum(shares) / len(shares) if shares else None
        return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class NormDiagnostics(L.Callback):
    """Measures the registry norm layers of the task's probe network at planned training steps (module docstring)."""

    def __init__(self, cfg: RunConfig, task: Any, stage: Any, path: Path) -> None:
        self.cfg, self.task, self.stage, self.path = cfg, task, stage, path
        self.settings: DiagnosticsConfig = cfg.diagnostics
        self.batch = task.normalization_batch(cfg)
        self.chunks = self.settings.probe_size // self.batch
        self.measurements: list[dict[str, Any]] = []
        self.planned: list[int] = []
        self._net: nn.Module | None = None
        self._inputs: Tensor | None = None

    # --- when -----------------------------------------------------------------------------------
    def _batches_done(self, trainer: L.Trainer) -> int:
        return trainer.global_step // self.stage.optimizer_steps_per_batch

    def _total_batches(self, trainer: L.Trainer) -> int:
        per_epoch = trainer.num_training_batches
        total = int(per_epoch * (trainer.max_epochs or 1)) if math.isfinite(per_epoch) else 0
        if self.stage.max_steps > 0:
            total = min(total, self.stage.max_steps) if total else self.stage.max_steps
        return total

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.planned = planned_steps(self.settings, self._total_batches(trainer))
        self._net, inputs = self.task.diagnostics_probe(self.cfg, pl_module, trainer.datamodule,
                                                        self.settings.probe_size, self.settings.probe_seed)
        self._inputs = inputs[: self.chunks * self.batch]
        self._maybe_measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._maybe_measure(trainer, pl_module)

    def _maybe_measure(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = self._batches_done(trainer)
        if step in self.planned and step not in {m["step"] for m in self.measurements}:
            self.measure(trainer, pl_module, step)

    # --- what -----------------------------------------------------------------------------------
    def probe(self, net: nn.Module, inputs: Tensor, forward_context: Any = None) -> list[dict[str, Any]]:
        """One probe pass of ``inputs`` in chunks of the normalization batch; per (layer, pooling) results."""
        stats: list[_LayerStats] = []
        hooks = []
        for name, module, resolved in find_norm_layers(net):
            entries = [_LayerStats(name, module, p) for p in resolved.entry.pooling]
            if not entries:
                continue
            stats.extend(entries)

            def hook(mod: nn.Module, args: tuple[Any, ...], output: Any, entries=entries) -> None:
                for entry in entries:
                    entry.add(args[0])
            hooks.append(module.register_forward_hook(hook))
        try:
            with preserved_state(net), torch.no_grad(), (forward_context or contextlib.nullcontext()):
                for start in range(0, len(inputs) - self.batch + 1, self.batch):
                    net.forward(inputs[start:start + self.batch])  # eager also when the run compiles the network
        finally:
            for handle in hooks:
                handle.remove()
        return [s.result() for s in stats]

    def measure(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> None:
        assert self._net is not None and self._inputs is not None
        started = time.perf_counter()
        precision = trainer.precision_plugin  # the dtype and autocast training runs under
        inputs = precision.convert_input(self._inputs.to(pl_module.device))
        layers = self.probe(self._net, inputs, precision.forward_context())
        seconds = time.perf_counter() - started
        self.measurements.append({"step": step, "epoch": trainer.current_epoch, "seconds": round(seconds, 3),
                                  "layers": layers})
        log.debug("norm diagnostics at step %d: %.1fs", step, seconds)
        if trainer.is_global_zero:
            write_json_atomic(self.path, self.document())

    # --- results --------------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        """The contents of norm_stats.json."""
        return {"schema": FILE_SCHEMA, "norm": str(self.cfg.norm), "stage": self.stage.name,
                "normalization_batch": self.batch, "probe_size": self.chunks * self.batch,
                "probe_batches": self.chunks, "probe_seed": self.settings.probe_seed, "planned_steps": self.planned,
                "summary": summarize(self.measurements), "measurements": self.measurements}

    def record_fields(self) -> dict[str, Any]:
        """The record's ``diagnostics/...`` fields (see docs/run-record.md)."""
        fields = {f"{RECORD_PREFIX}{k}": v for k, v in summarize(self.measurements).items() if v is not None}
        fields[f"{RECORD_PREFIX}probe_size"] = self.chunks * self.batch
        fields[f"{RECORD_PREFIX}file"] = self.path.name
        return fields

    def state_dict(self) -> dict[str, Any]:
        return {"measurements": self.measurements}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.measurements = list(state.get("measurements") or [])


def summarize(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """Run-level summary: noise and confusion averaged over layers (and poolings) and steps; the geometric mean
    of elements per statistic over layers (and poolings) at the last step."""
    def mean_of(key: str) -> float | None:
        values = [entry[key] for m in measurements for entry in m["layers"] if entry.get(key) is not None]
        return sum(values) / len(values) if values else None

    last = measurements[-1]["layers"] if measurements else []
    elements = [float(e["elements_per_stat"]) for e in last if e.get("elements_per_stat")]
    gm = geometric_mean(elements)
    return {"noise_mean": mean_of("noise_mean"), "noise_std": mean_of("noise_std"), "confusion": mean_of("confusion"),
            "elements_per_stat": round(gm, 3) if math.isfinite(gm) else None,
            "elements_per_stat_min": min(elements) if elements else None,
            "steps": [m["step"] for m in measurements]}
