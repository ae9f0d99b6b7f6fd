"""The normalization protocol: which images a norm layer sees together, and which statistics at test time.

Two choices decide what a batch-statistics norm does in few-shot learning, and
both are explicit, recorded, and the same for every norm of a comparison:

``forward``
    ``joint``: support and query images go through the network in one forward
    (ProtoNet's reference code: a 5-way 1-shot episode with 15 queries is one
    batch of 80). ``separate``: the support set alone, then the query set
    (MAML adapts on the 5 support images of a 5-way 1-shot task).
``norm_mode`` (validation and test)
    ``transductive``: norm layers run in train mode on each evaluation
    episode's own images and running statistics are never used (MAML's
    reference). ``running``: eval mode with the running statistics of
    meta-training (ProtoNet's reference).

Each method gets its reference behaviour by default; the config overrides it.

Both modes side by side (TaskNorm, Bronskill et al., 2020): ``transductive``
gives a batch-statistics norm information that GN and LN never get, the
statistics of all test queries at once. So the test episodes are evaluated in
*both* modes in one run for every norm whose registry metadata says it uses
batch statistics and keeps running ones (:func:`other_norm_mode`): ``test/acc``
in the configured mode and ``test/<other>_acc`` in the other, the same trained
weights on the same episodes, paired by construction. For a norm without batch
statistics the two modes are the same computation (the same layers in the same
mode), so the second metric is the first's value, not evaluated twice.
Validation and checkpoint selection use the configured mode only.

What ``running`` means per method: ProtoNet and ANIL embed with the
network in eval mode, its running statistics accumulated over meta-training's
joint (ProtoNet) or separate support and query (ANIL) forwards. For MAML a
clone shares its base model's running buffers and copies its ``training``
flag when it is made: in meta-training every support forward (base weights) and
every query forward (adapted weights) of every task moves the one set of running
statistics, and a running-mode test clone adapts and predicts with them.

Evaluation never changes the model that the next episode starts from. A MAML
clone shares the base model's running buffers (learn2learn clones parameters,
not buffers), so one train-mode adapt-and-forward moves the base model's
``running_mean`` and ``num_batches_tracked``. :class:`BufferGuard` takes a copy of
every buffer when evaluation starts and puts it back after each episode, for
every method and norm alike, so an episode's result does not depend on which
episodes came before it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
from torch import nn

from normlayers import find_norm_layers, resolve_norm

from .config import FewShotConfig, OuterLoopConfig

__all__ = [
    "Reference", "REFERENCE", "forward_of", "norm_mode_of", "method_section", "meta_batch_of", "filters_of",
    "normalization_batch", "set_evaluation_modes", "BufferGuard", "keeps_no_running_stats", "SecondMode",
    "other_norm_mode", "NORM_MODES",
]

Forward = Literal["joint", "separate"]
NormMode = Literal["transductive", "running"]
NORM_MODES: tuple[NormMode, NormMode] = ("transductive", "running")


@dataclass(frozen=True)
class Reference:
    """A method's reference protocol and where it comes from."""

    forward: Forward
    norm_mode: NormMode
    source: str


REFERENCE: dict[str, Reference] = {
    "protonet": Reference("joint", "running",
                          "Snell et al. (2017) code: support and query embedded in one batch; eval mode at test"),
    "maml": Reference("separate", "transductive",
                      "Finn et al. (2017) code: adapt on the support set; batch statistics at test, none stored"),
    "anil": Reference("separate", "transductive", "Raghu et al. (2020) build on MAML's code and protocol"),
}


def forward_of(cfg: FewShotConfig) -> Forward:
    return cfg.forward or REFERENCE[cfg.method].forward


def norm_mode_of(cfg: FewShotConfig) -> NormMode:
    return cfg.norm_mode or REFERENCE[cfg.method].norm_mode


def method_section(cfg: FewShotConfig) -> OuterLoopConfig:
    section: OuterLoopConfig = getattr(cfg, cfg.method)
    return section


def meta_batch_of(cfg: FewShotConfig) -> int:
    """Episodes per meta-update: ``--batch_size`` when given, else the method section's pinned value."""
    return cfg.batch_size or method_section(cfg).meta_batch


def filters_of(cfg: FewShotConfig) -> int:
    """CNN-4 width: the config's, else 32 for MAML/ANIL on mini-ImageNet (Finn et al., 2017), else 64."""
    if cfg.model.filters is not None:
        return cfg.model.filters
    return 32 if cfg.data.name == "mini_imagenet" and cfg.method in ("maml", "anil") else 64


def normalization_batch(cfg: FewShotConfig) -> int:
    """Images in one normalizing forward during meta-training: ways x (shots + queries) joint, ways x shots separate."""
    if forward_of(cfg) == "joint":
        return cfg.ways * (cfg.shots + cfg.queries)
    return cfg.ways * cfg.shots


def keeps_no_running_stats(norm: str) -> bool:
    """A batch-statistics norm configured without running statistics (``bn:track_running_stats=false``)."""
    resolved = resolve_norm(norm)
    if not resolved.entry.uses_batch_stats:
        return False
    return not resolved.entry.keeps_running_stats or resolved.kwargs.get("track_running_stats") is False


@dataclass(frozen=True)
class SecondMode:
    """The norm mode reported beside the configured one.

    Attributes:
        mode: ``transductive`` or ``running`` (the one not configured).
        evaluated: the test episodes run a second time in it; False when no layer uses batch statistics, so both
            modes put every layer in the same mode and the second metric is the first's value.
    """

    mode: NormMode
    evaluated: bool


def other_norm_mode(cfg: FewShotConfig) -> SecondMode | None:
    """The second test mode of a run, or None when the norm keeps no running statistics (running is impossible)."""
    mode = norm_mode_of(cfg)
    other: NormMode = "running" if mode == "transductive" else "transductive"
    resolved = resolve_norm(str(cfg.norm))
    if not resolved.entry.uses_batch_stats:
        return SecondMode(other, evaluated=False)
    if keeps_no_running_stats(str(cfg.norm)):
        return None
    return SecondMode(other, evaluated=True)


def set_evaluation_modes(net: nn.Module, norm_mode: NormMode) -> None:
    """Eval mode everywhere, except batch-statistics norm layers in transductive mode (registry metadata decides)."""
    net.eval()
    if norm_mode == "transductive":
        for _, layer, resolved in find_norm_layers(net):
            if resolved.entry.uses_batch_stats:
                layer.train()


class BufferGuard:
    """Puts every buffer of a network back after each evaluation episode (see the module docstring)."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    def capture(self) -> None:
        self.saved = [(buffer, buffer.detach().clone()) for buffer in self.net.buffers()]

    def restore(self) -> None:
        with torch.no_grad():
            for buffer, value in self.saved:
                buffer.copy_(value)

    @contextmanager
    def episode(self) -> Iterator[None]:
        """Run one episode; the buffers are as they were at :meth:`capture` afterwards, even on error."""
        try:
            yield
        finally:
            self.restore()
