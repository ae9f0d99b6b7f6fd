"""Which implementation computes BGN's train-mode forward, chosen per call from the input.

All paths compute the same function (tests/normlayers/test_bgn_paths.py holds them to one
another and to the definition); the choice is speed only, and deterministic: it depends
on the device, dtype, memory layout, G versus C and, for the eager paths, the element
count. ``python -m normlayers.bench --paths`` times every path at every benchmark shape
and prints the table this rule was read from (docs/benchmarks.md keeps the measured copy):

| input | path | why |
|---|---|---|
| synchronized statistics | ``two_phase`` | the only path with a cross-process reduction |
| G = C | ``batch_norm`` | BGN *is* BN there: ``F.batch_norm`` as is (exact identity) |
| traced by ``torch.compile`` | ``plain`` | the formula in plain operators, which inductor fuses |
| CPU, float32/64, contiguous, kernel built | ``native`` | one op call, one C++ backward node (as BN); fastest measured |
| otherwise, < 256k elements | ``composite`` | fewest ATen calls (group-norm kernel on a reordered copy) |
| otherwise, >= 256k elements | ``two_phase`` | fewest memory passes; crossover 131k-401k elements for every G |

"Otherwise" covers GPUs (no device here to measure on; the eager rule stands),
channels-last or other non-contiguous inputs, half-precision inputs without affine
parameters, and machines where the native kernel could not be built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import Tensor

from .native import native_ops

__all__ = ["TrainPath", "TRAIN_PATHS", "EAGER_PATHS", "choose_train_path", "forced_train_path", "TWO_PHASE_MIN_NUMEL"]

TrainPath = Literal["batch_norm", "native", "composite", "two_phase", "plain", "noop"]
TRAIN_PATHS: tuple[str, ...] = ("native", "composite", "two_phase", "plain")  # the general-G paths, for benches and tests
EAGER_PATHS = "eager"  # forced_train_path("eager"): the rule without the native kernel (what BGN did before it)

# Eager crossover between the composite and the two-phase path, measured on a 2-core CPU
# (it fell between 131k and 401k elements for every G tried).
TWO_PHASE_MIN_NUMEL = 1 << 18

_NATIVE_DTYPES = (torch.float32, torch.float64)
_forced: list[str] = []


def _eager_path(x: Tensor) -> TrainPath:
    return "two_phase" if x.numel() >= TWO_PHASE_MIN_NUMEL else "composite"


def choose_train_path(x: Tensor, groups: int, channels: int, synchronized: bool) -> TrainPath:
    """The path for a train-mode forward of ``x`` (already in the parameters' dtype)."""
    if synchronized:
        return "two_phase"
    if groups == channels:
        return "batch_norm"
    if _forced:
        forced = _forced[-1]
        return _eager_path(x) if forced == EAGER_PATHS else forced  # type: ignore[return-value]
    if torch.compiler.is_compiling():
        return "plain"
    if x.is_cpu and x.dtype in _NATIVE_DTYPES and x.is_contiguous() and native_ops() is not None:
        return "native"
    return _eager_path(x)


@contextmanager
def forced_train_path(path: str) -> Iterator[None]:
    """Run every non-synchronized, G != C BGN forward through ``path`` (benchmarks and tests).

    ``path`` is one of TRAIN_PATHS, ``"noop"`` (the native operator's do-nothing twin, for
    the framework floor) or ``"eager"`` (the element-count rule without the native kernel).
    Process-wide and not thread-safe: meant for one benchmark or test at a time.
    """
    allowed = (*TRAIN_PATHS, "noop", EAGER_PATHS)
    if path not in allowed:
        raise ValueError(f"unknown BGN train path {path!r}; choose one of {', '.join(allowed)}")
    if path in ("native", "noop") and native_ops() is None:
        raise RuntimeError("BGN's native kernel is unavailable here (see python -m normlayers.native status)")
    _forced.append(path)
    try:
        yield
    finally:
        _forced.pop()
