"""BGN as a two-phase autograd function, optionally synchronized across processes.

Forward, phase 1: the fused group-norm kernel, run on the (N, S, Ls) view with
eps = 0, returns each sample's mean and inverse std per group (its output is
discarded); those N x G moments combine into the batch statistics with the law
of total variance, which has none of E[x^2] - E[x]^2's cancellation. Phase 2:
one eval-mode batch-norm pass applies the per-segment affine map. Backward: the
group-norm backward kernel, handed the *batch* statistics, reduces the per-segment
sums of dy and dy * xhat in one pass; the input gradient is then an affine
combination of dy and x with per-segment coefficients.

With a process group, phase 1's per-group (count, mean, variance) triples are
``all_gather``-ed and combined across processes, and backward ``all_reduce``-s the
two per-group sums the input gradient needs; parameter gradients stay local, as
in ``nn.SyncBatchNorm``, because DDP averages them. Only ``torch.distributed``
collectives are used, so the same code runs with gloo on CPU (which
``nn.SyncBatchNorm`` refuses) and with NCCL on GPUs; processes may hold
different batch sizes.

Second-order gradients (MAML's inner loop with ``create_graph=True``) recompute
the layer with the composite, twice-differentiable form and differentiate that;
they are not available when synchronized.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from .bgn_functional import bgn_train_local, per_segment
from .group_layout import GroupLayout

__all__ = ["bgn_train_two_phase", "sync_world_size"]

_group_norm_backward = torch.ops.aten.native_group_norm_backward
_batch_norm_out = torch.ops.aten.native_batch_norm.out
_EMPTY = torch.empty(0)


def sync_world_size(process_group: Any) -> int:
    """Number of processes to synchronize with (1 when not running distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(process_group)


def _local_moments(xs: Tensor, layout: GroupLayout) -> tuple[Tensor, Tensor, Tensor]:
    """Per-group mean and biased variance of this process's batch, and a scratch tensor like ``xs``.

    The scratch is the group-norm kernel's (unneeded) output; the caller writes
    the layer's output into it, which saves allocating a second input-sized
    tensor (on a CPU, page-faulting in fresh memory costs as much as the pass).
    """
    n, s, ls = xs.shape
    scratch, mean_ng, rstd_ng = torch.native_group_norm(xs, None, None, n, s, ls, layout.groups, 0.0)
    var_ng = rstd_ng.pow(-2)  # eps = 0: rstd = 1/std exactly; a constant group gives inf -> 0
    mean = mean_ng.mean(0)
    var = (mean_ng - mean).square_().add_(var_ng).mean(0)
    return mean, var, scratch


def _all_gather_moments(mean: Tensor, var: Tensor, count: int, group: Any) -> tuple[Tensor, Tensor, int]:
    """Combine every process's (count, mean, var) per group into global statistics."""
    local = torch.cat([mean.new_tensor([float(count)]), mean, var])
    gathered = [torch.empty_like(local) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, local, group=group)
    stacked = torch.stack(gathered)
    g = mean.numel()
    counts, means, variances = stacked[:, :1], stacked[:, 1 : 1 + g], stacked[:, 1 + g :]
    total = counts.sum()
    global_mean = (counts * means).sum(0) / total
    global_var = (counts * (variances + (means - global_mean).square())).sum(0) / total
    return global_mean, global_var, int(round(total.item()))


class _TwoPhaseBGN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layout: GroupLayout, eps: float, group: Any):  # type: ignore[override]
        n = x.shape[0]
        xs = x.reshape(n, layout.segments, layout.segment_len)
        mean, var, y = _local_moments(xs, layout)
        count = n * layout.group_len
        if group is not None:
            mean, var, count = _all_gather_moments(mean, var, count, group)
        per_group, per_channel = layout.segments_per_group, layout.segments_per_channel
        # One eval-mode batch-norm pass = the per-segment affine map, written over the scratch.
        # y stays (N, S, Ls): the caller views it as x's shape (a view made here could not be
        # modified in place by the next layer).
        _batch_norm_out(
            xs,
            per_segment(weight, per_channel),
            per_segment(bias, per_channel),
            per_segment(mean, per_group),
            per_segment(var, per_group),
            False,
            0.0,
            eps,
            out=y,
            save_mean=_EMPTY.to(xs),
            save_invstd=_EMPTY.to(xs),
        )
        ctx.save_for_backward(x, weight, bias, mean, var)
        ctx.layout, ctx.eps, ctx.group, ctx.count = layout, eps, group, count
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var, count

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar, _dcount):  # type: ignore[override]
        x, weight, bias, mean, var = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate a twice-differentiable recomputation
            return _second_order_backward(ctx, dy, x, weight, bias)
        layout: GroupLayout = ctx.layout
        n, s, ls, g = x.shape[0], layout.segments, layout.segment_len, layout.groups
        per_group, per_channel = layout.segments_per_group, layout.segments_per_channel
        xs = x.reshape(n, s, ls)
        dys = dy.reshape(n, s, ls).contiguous()
        rstd = (var + ctx.eps).rsqrt_()
        # Per segment: sum of dy * xhat (with the batch statistics) and sum of dy.
        _, sum_dy_xhat, sum_dy = _group_norm_backward(
            dys, xs, mean.expand(n, g).contiguous(), rstd.expand(n, g).contiguous(), None, n, s, ls, g, [False, True, True]
        )
        w_s = per_segment(weight, per_channel) if weight is not None else torch.ones_like(sum_dy)
        sums = torch.stack((sum_dy, sum_dy_xhat)).mul_(w_s).view(2, g, per_group).sum(2)
        if ctx.group is not None:
            dist.all_reduce(sums, group=ctx.group)
        k1, k2 = sums.div_(ctx.count).unbind(0)  # group means of d(xhat) and of d(xhat) * xhat
        r2k2 = rstd * rstd * k2
        coef_x = per_segment(-r2k2, per_group)
        coef_1 = per_segment(r2k2 * mean - rstd * k1, per_group)
        coef_dy = (w_s * per_segment(rstd, per_group)).view(1, s, 1)
        # dx = x * coef_x + coef_1 + dy * coef_dy. The first part is a per-segment affine map, which
        # the eval-mode batch-norm kernel applies fastest (mean 0, variance 1, eps 0: scale exactly 1);
        # an out-of-place addcmul with a broadcast first operand was 3x slower on CPU.
        dx = F.batch_norm(xs, torch.zeros_like(coef_x), torch.ones_like(coef_x), coef_x, coef_1, False, 0.0, 0.0)
        dx = dx.addcmul_(dys, coef_dy).view(x.shape)
        dweight = sum_dy_xhat.view(-1, per_channel).sum(1) if weight is not None else None
        dbias = sum_dy.view(-1, per_channel).sum(1) if bias is not None else None
        return dx, dweight, dbias, None, None, None


def _second_order_backward(ctx, dy: Tensor, x: Tensor, weight: Tensor | None, bias: Tensor | None):
    if ctx.group is not None:
        raise RuntimeError(
            "BatchGroupNorm: second-order gradients (create_graph=True) are not supported with synchronized "
            "statistics; train without sync_batchnorm or use first-order MAML"
        )
    inputs = (x, weight, bias)
    wanted = [i for i, t in enumerate(inputs) if t is not None and ctx.needs_input_grad[i]]
    with torch.enable_grad():
        y = bgn_train_local(x, ctx.layout, weight, bias, ctx.eps)[0]
    grads = torch.autograd.grad(y, [inputs[i] for i in wanted], dy.reshape(y.shape), create_graph=True, allow_unused=True)
    out: list[Tensor | None] = [None, None, None]
    for i, grad in zip(wanted, grads):
        out[i] = grad
    return out[0], out[1], out[2], None, None, None


def bgn_train_two_phase(
    x: Tensor,
    layout: GroupLayout,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    process_group: Any | None,
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Normalize with batch statistics (over all processes of ``process_group`` if given).

    Returns the output, the per-group mean and biased variance, and the number of
    values each group statistic was computed from (for the unbiased running variance).
    """
    y, mean, var, count = _TwoPhaseBGN.apply(x, weight, bias, layout, eps, process_group)
    return y.view(x.shape), mean, var, count
