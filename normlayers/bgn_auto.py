"""BGN that chooses its G per layer: ``bgn:num_groups=auto`` (or ``bgn:elements=M``).

Each statistic of BGN pools N*C*H*W/G values (N the batch per process). Asked
for about M values per statistic, a layer takes G = N*C*H*W/M, snapped to a
divisor of C*H*W (:func:`choose_groups`): the divisor nearest to the target in
log space; the target is clamped to [1, C*H*W] first, and a tie (two divisors
equally far in log space, i.e. lo*hi = target^2) goes to the smaller G (more
values per statistic). All comparisons are exact integer arithmetic.

``create_norm`` knows only C, so G is chosen at the layer's first forward pass,
from that input's C*H*W and a batch size N:

- N is the *batch hint* when one is set: :func:`set_normalization_batch` on a
  model (what normbench's run harness does before each training stage, with
  the stage's per-device normalization batch), or the :func:`normalization_batch`
  context (what the dry forward pass uses). With a hint, the first forward may
  be in either mode and at any batch size (a sanity-check or attack forward in
  eval mode, a dry pass at batch 2): G is chosen for the hinted batch.
- Without a hint (a layer used in plain PyTorch), N is the batch size of the
  first *training-mode* forward. An eval-mode forward before G is chosen is
  refused with a RuntimeError that says how to choose it.

The choice is kept in the layer's state (``_extra_state`` in the state dict:
G, M, C*H*W and N), so a fresh auto layer loading a state dict takes the stored
G and running buffers of length G; ``num_groups`` holds the chosen G (None
before), which is what the registry's pooling metadata reads. The choice lives
in a small shared object, so learn2learn's ``clone()`` (MAML), which copies a
module's ``__dict__`` and shares its buffers, resolves the original layer too.
The running buffers are resized in place, so DDP's and SyncBatchNorm's
references to them stay valid when G is chosen after the model was wrapped; when
G was chosen in a stateless call (``torch.func.functional_call`` with copies of
the buffers), the layer's own buffers are resized at its next forward.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from .bgn import BatchGroupNorm
from .group_layout import divisors

__all__ = [
    "AutoBatchGroupNorm",
    "DEFAULT_ELEMENTS",
    "choose_groups",
    "divisors",
    "normalization_batch",
    "set_normalization_batch",
    "auto_group_choices",
]

# Values per statistic that num_groups=auto aims at (calibrated in docs/auto-groups.md).
DEFAULT_ELEMENTS = 1024

_BATCH_HINT: contextvars.ContextVar[int | None] = contextvars.ContextVar("normlayers_batch_hint", default=None)


def choose_groups(batch: int, features: int, elements: int) -> int:
    """The G for ``batch`` samples of ``features`` = C*H*W values each, aiming at ``elements`` values per statistic.

    The target batch*features/elements is snapped to the divisor of ``features``
    nearest in log space, ties to the smaller G; below 1 it gives 1, above
    ``features`` it gives ``features``.

    >>> choose_groups(16, 12544, 4096)   # target 49: 49 divides 12544
    49
    >>> choose_groups(2, 3136, 8192), choose_groups(128, 3136, 1)   # clamped to 1 and to C*H*W
    (1, 3136)
    """
    for name, value in (("batch", batch), ("features", features), ("elements", elements)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"choose_groups: {name} must be an integer >= 1, got {value!r}")
    total = batch * features  # target G = total / elements, kept as a fraction
    divs = divisors(features)
    lo = max((d for d in divs if d * elements <= total), default=None)
    hi = min((d for d in divs if d * elements >= total), default=None)
    if lo is None or hi is None:
        return hi if lo is None else lo  # target below 1 or above features: clamped
    if lo == hi:
        return lo
    # log-distance: target/lo vs hi/target  <=>  target^2 vs lo*hi  <=>  total^2 vs lo*hi*elements^2
    return hi if total * total > lo * hi * elements * elements else lo


@contextlib.contextmanager
def normalization_batch(batch: int) -> Iterator[None]:
    """Within this context, auto BGN layers without a hint of their own choose G for ``batch`` samples."""
    token = _BATCH_HINT.set(int(batch))
    try:
        yield
    finally:
        _BATCH_HINT.reset(token)


@dataclass
class GroupChoice:
    """What an auto layer has chosen (shared with learn2learn clones of the layer)."""

    elements: int
    batch_hint: int | None = None
    groups: int | None = None
    features: int | None = None  # C*H*W of the input G was chosen for
    batch: int | None = None  # N G was chosen for

    def as_state(self) -> dict[str, Any]:
        return {"num_groups": self.groups, "elements": self.elements, "features": self.features, "batch": self.batch}


class AutoBatchGroupNorm(BatchGroupNorm):
    """BGN whose G is chosen per layer to pool about ``elements`` values per statistic (module docstring).

    Example:
        >>> layer = AutoBatchGroupNorm(16, elements=4096)
        >>> _ = layer.train()(torch.randn(8, 16, 28, 28))   # first training forward: N=8, C*H*W=12544
        >>> layer.num_groups                                  # 8*12544/4096 = 24.5 -> 28 (nearest divisor in log space)
        28
    """

    def __init__(self, num_channels: int, elements: int = DEFAULT_ELEMENTS, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True, track_running_stats: bool = True) -> None:
        # G=0 until chosen: running buffers of length 0, resized in place once G is known.
        super().__init__(num_channels, 0, eps, momentum, affine, track_running_stats)
        self._choice.elements = elements

    @property  # type: ignore[override]
    def num_groups(self) -> int | None:
        return self._choice.groups

    @num_groups.setter
    def num_groups(self, value: int | None) -> None:
        choice = self.__dict__.get("_choice")
        if choice is None:
            choice = self.__dict__["_choice"] = GroupChoice(DEFAULT_ELEMENTS)
        choice.groups = value or None

    @property
    def elements(self) -> int:
        return self._choice.elements

    @property
    def choice(self) -> GroupChoice:
        return self._choice

    def set_batch_hint(self, batch: int | None) -> None:
        """Choose G for ``batch`` samples at the first forward, whatever that forward's batch and mode."""
        self._choice.batch_hint = batch

    def _resize_statistics(self, groups: int) -> None:
        stats = self.stats
        stats.num_features = groups
        with torch.no_grad():
            if stats.running_mean is not None:
                stats.running_mean.resize_(groups).zero_()
                stats.running_var.resize_(groups).fill_(1.0)
            if stats.num_batches_tracked is not None:
                stats.num_batches_tracked.zero_()

    def choose(self, batch: int, features: int) -> int:
        """Choose (and keep) G for ``batch`` samples of ``features`` = C*H*W values each."""
        groups = choose_groups(batch, features, self.elements)
        self._resize_statistics(groups)
        choice = self._choice
        choice.groups, choice.features, choice.batch = groups, features, batch
        return groups

    def forward(self, x: Tensor) -> Tensor:
        groups = self._choice.groups
        if groups is None:
            self._choose_from(x)
        else:
            running_mean = self.stats.running_mean
            if running_mean is not None and running_mean.shape[0] != groups:
                # G was chosen in a stateless call (torch.func.functional_call with copies of the buffers, as
                # DARTS' architecture step does), which resized the copies: these buffers get the length now.
                self._resize_statistics(groups)
        return super().forward(x)

    def _choose_from(self, x: Tensor) -> None:
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"BatchGroupNorm({self.num_channels}) expects input (N, {self.num_channels}, ...), got {tuple(x.shape)}"
            )
        batch = self._choice.batch_hint or _BATCH_HINT.get()
        if batch is None:
            if not self.stats.training:
                raise RuntimeError(
                    f"BatchGroupNorm({self.num_channels}, num_groups=auto, elements={self.elements}) has not chosen "
                    f"its G yet, and an eval-mode forward (input {tuple(x.shape)}) cannot choose it: run one "
                    "training-mode forward first (its batch size sets G), give the batch size with "
                    "normlayers.set_normalization_batch(model, n), or load a state dict that holds G"
                )
            batch = x.shape[0]
        self.choose(int(batch), math.prod(x.shape[1:]))

    def get_extra_state(self) -> dict[str, Any]:
        return self._choice.as_state()

    def set_extra_state(self, state: Any) -> None:
        # Runs before the ``stats`` child loads its buffers (parents load first), so they have the stored length.
        if not isinstance(state, dict) or "num_groups" not in state:
            raise RuntimeError(f"AutoBatchGroupNorm: unexpected extra state {state!r} (expected the chosen G)")
        groups = state["num_groups"]
        choice = self._choice
        self._resize_statistics(groups or 0)
        choice.groups, choice.features, choice.batch = groups or None, state.get("features"), state.get("batch")

    def extra_repr(self) -> str:
        groups = "auto" if self.num_groups is None else f"{self.num_groups} (auto)"
        return f"{self.num_channels}, num_groups={groups}, elements={self.elements}, eps={self.eps}, affine={self.affine}"


def set_normalization_batch(model: nn.Module, batch: int | None) -> int:
    """Tell every auto BGN layer in ``model`` to choose G for ``batch`` samples; returns how many there are.

    Layers that have chosen already keep their G (a run resumed from a checkpoint keeps the stored one).
    """
    layers = [m for m in model.modules() if isinstance(m, AutoBatchGroupNorm)]
    for layer in layers:
        layer.set_batch_hint(batch)
    return len(layers)


def auto_group_choices(model: nn.Module, prefix: str = "") -> dict[str, dict[str, Any]]:
    """``{qualified layer name: {num_groups, elements (asked M), features, batch}}`` for the auto BGN layers."""
    return {prefix + name: m.choice.as_state() for name, m in model.named_modules() if isinstance(m, AutoBatchGroupNorm)}
