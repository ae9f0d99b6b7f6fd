"""Norms that carry their own nonlinearity, and the models that must not add a second one.

FRN (with its TLU) and the EvoNorms end in a nonlinearity of their own; their
registry entry names it (``builtin_activation``) and they take an ``apply_act``
argument. A model asks two questions, never a class name:

- a norm slot with no activation after it (before a residual add, the end of a
  DARTS ReLU-conv-norm op) builds the norm with ``create_norm(spec, C,
  activation=False)``, which switches such a layer's own activation off;
- a norm slot followed by a ReLU uses :func:`activation_after` for that ReLU,
  which is the ReLU for ordinary norms and an identity after a layer that has
  applied its own activation already.

Swapping a ReLU for ``nn.Identity`` keeps the model's parameter names, so
checkpoints and state dicts are the same shape for every norm.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .registry import SPEC_ATTRIBUTE, resolve_norm
from .spec import NormSpec

__all__ = ["applies_own_activation", "activation_after"]


def applies_own_activation(layer: nn.Module) -> bool:
    """Whether ``layer`` (a registry norm) ends in its own nonlinearity as configured."""
    spec = getattr(layer, SPEC_ATTRIBUTE, None)
    if not isinstance(spec, NormSpec):
        return False
    resolved = resolve_norm(spec)
    if resolved.entry.builtin_activation is None:
        return False
    return bool(getattr(layer, "apply_act", resolved.kwargs.get("apply_act", True)))


def activation_after(layer: nn.Module, make: Callable[[], nn.Module] = lambda: nn.ReLU(inplace=True)) -> nn.Module:
    """The activation a model puts after ``layer``: ``make()``, or identity if the layer applied its own."""
    return nn.Identity() if applies_own_activation(layer) else make()
