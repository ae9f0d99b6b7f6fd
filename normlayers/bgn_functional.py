"""BGN's computations on one process: batch statistics (train) and running statistics (eval).

Train mode, small inputs, uses a layout trick instead of a hand-written kernel.
In the (S, N, Ls) order (segments first), every BGN group is one contiguous
block, exactly what the fused group-norm kernel normalizes: ``native_group_norm``
on a (1, S, N*Ls) tensor with G groups computes BGN's statistics over batch and
group together, applies the per-segment affine, and returns the group means and
inverse standard deviations that the running statistics need. Going to that
order and back costs two copies (none when N = 1), and autograd differentiates
the whole chain with native kernels, twice if needed (second-order MAML). It
makes few operator calls, which is what small inputs pay for; larger inputs go
to :mod:`normlayers.bgn_two_phase` (fewer memory passes, more parallel rows).
``python -m normlayers.bench`` prints the resulting speed against BatchNorm2d.

:func:`bgn_train_plain` is the definition in plain operators: what ``torch.compile``
traces (inductor fuses it into a few loops), and the reference the other paths are held to.

When G = C the layer *is* batch normalization, and ``F.batch_norm`` is used as is.
Which path runs is decided in :mod:`normlayers.bgn_paths`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .group_layout import GroupLayout

__all__ = ["per_segment", "bgn_train_local", "bgn_train_plain", "bgn_eval", "update_running_stats"]


def per_segment(values: Tensor | None, repeats: int) -> Tensor | None:
    """Expand a per-channel or per-group vector to one entry per segment."""
    if values is None or repeats == 1:
        return values
    return values.repeat_interleave(repeats)


def bgn_train_local(
    x: Tensor,
    layout: GroupLayout,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Normalize ``x`` with this process's batch statistics.

    Returns the output and the per-group mean and biased variance (detached),
    from which the caller updates the running statistics.
    """
    n = x.shape[0]
    s, ls = layout.segments, layout.segment_len
    # (N, S, Ls) -> (S, N, Ls): every group becomes a contiguous run of S/G segments.
    xt = x.reshape(n, s, ls).transpose(0, 1).reshape(1, s, n * ls)
    w = per_segment(weight, layout.segments_per_channel)
    b = per_segment(bias, layout.segments_per_channel)
    yt, mean, rstd = torch.native_group_norm(xt, w, b, 1, s, n * ls, layout.groups, eps)
    y = yt.view(s, n, ls).transpose(0, 1).reshape(x.shape)
    var = rstd.detach().view(-1).pow(-2).sub_(eps).clamp_(min=0.0)  # detached: no graph, no no_grad needed
    return y, mean.detach().view(-1), var


def bgn_train_plain(
    x: Tensor,
    layout: GroupLayout,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """The definition, written plainly: statistics over dims (0, 2) of the (N, G, L) view, then the affine map."""
    n = x.shape[0]
    grouped = x.reshape(n, layout.groups, -1)
    var, mean = torch.var_mean(grouped, dim=(0, 2), correction=0, keepdim=True)
    y = ((grouped - mean) * torch.rsqrt(var + eps)).view(x.shape)
    channel_shape = (1, -1) + (1,) * (x.dim() - 2)
    if weight is not None:
        y = y * weight.view(channel_shape)
    if bias is not None:
        y = y + bias.view(channel_shape)
    return y, mean.detach().view(-1), var.detach().view(-1)


def bgn_eval(
    x: Tensor,
    layout: GroupLayout,
    running_mean: Tensor,
    running_var: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> Tensor:
    """Normalize ``x`` with fixed per-group statistics (eval mode): a per-segment affine map.

    Each sample is transformed on its own, so the output does not depend on the
    rest of the batch.
    """
    n = x.shape[0]
    per_group = layout.segments_per_group
    y = F.batch_norm(
        x.reshape(n, layout.segments, layout.segment_len),
        per_segment(running_mean, per_group),
        per_segment(running_var, per_group),
        per_segment(weight, layout.segments_per_channel),
        per_segment(bias, layout.segments_per_channel),
        False,
        0.0,
        eps,
    )
    return y.view(x.shape)


def update_running_stats(
    running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor, count: int, factor: float
) -> None:
    """BN's update rule: exponential average of the mean and the *unbiased* variance.

    ``count`` is the number of values each group statistic was computed from
    (N * L, summed over processes when synchronized). ``mean`` and ``var`` must
    be detached (they are), so the in-place updates record no graph.
    """
    if mean.dtype != running_mean.dtype:
        mean, var = mean.to(running_mean.dtype), var.to(running_var.dtype)
    torch._foreach_lerp_((running_mean, running_var), (mean, var * (count / (count - 1))), factor)
