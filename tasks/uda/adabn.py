"""AdaBN (Li et al., 2016): the source-trained model with its running statistics re-estimated on the target.

AdaBN is an evaluation, not a training: nothing learnable changes. Every norm
layer whose registry entry keeps running statistics has them reset and
re-estimated as a cumulative average (momentum None: each batch counts equally)
over the target training images; everything else, including norms that keep no
statistics (LN, GN, IN, PN: they have nothing to adapt), is left exactly as
trained. The adapted network is a copy, so the source-only numbers of the same
run are untouched.

Which layers adapt is the registry's answer (``keeps_running_stats``), never a
class name. The statistics themselves are reset through torch's running-stats
interface (``reset_running_stats``), which BN and BGN's statistics child share.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn

from normlayers import ResolvedNorm, find_norm_layers

__all__ = ["adaptable_layers", "statistics_modules", "adapt_running_stats", "does_not_apply_reason"]


def adaptable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The registry norm layers of ``model`` that keep running statistics."""
    return [(name, layer) for name, layer, resolved in find_norm_layers(model) if resolved.entry.keeps_running_stats]


def statistics_modules(layer: nn.Module) -> list[nn.Module]:
    """The modules inside ``layer`` (itself included) that hold running statistics and track them.

    A running mean or a running variance counts: EvoNorm-B0 keeps only the variance (its formula has no mean).
    """
    return [m for m in layer.modules()
            if hasattr(m, "reset_running_stats") and getattr(m, "track_running_stats", False)
            and (getattr(m, "running_mean", None) is not None or getattr(m, "running_var", None) is not None)]


def does_not_apply_reason(resolved: ResolvedNorm) -> str | None:
    """Why AdaBN has nothing to adapt with this norm, or None when it applies."""
    if not resolved.entry.keeps_running_stats:
        return f"does not apply: {resolved.label} keeps no running statistics (registry: keeps_running_stats=false)"
    if resolved.kwargs.get("track_running_stats") is False:
        return f"does not apply: {resolved.label} is configured with track_running_stats=false"
    return None


@torch.no_grad()
def adapt_running_stats(model: nn.Module, batches: Iterable[torch.Tensor]) -> tuple[nn.Module, int, int]:
    """A copy of ``model`` whose running statistics are the cumulative average over ``batches``.

    Returns (adapted copy in eval mode, number of statistics modules adapted,
    number of images seen). Only the statistics modules run in training mode
    during the pass; dropout and everything else stay in eval mode.
    """
    adapted = copy.deepcopy(model).eval()
    modules = [m for _, layer in adaptable_layers(adapted) for m in statistics_modules(layer)]
    if not modules:
        return adapted, 0, 0
    for module in modules:
        module.reset_running_stats()
        module.momentum = None  # cumulative moving average over the pass
    for _, layer in adaptable_layers(adapted):
        layer.train()
    images = 0
    for x in batches:
        adapted(x)
        images += len(x)
    adapted.eval()
    return adapted, len(modules), images
