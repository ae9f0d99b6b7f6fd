"""DARTS' architecture gradient, first and second order, on any supernet with named alpha parameters.

First order: the gradient of the validation loss (the architecture half's batch)
with respect to alpha at the current weights w.

Second order (the unrolled step of Liu et al., 2019, eq. 6-8): with
w' = w - xi * (the weight optimizer's step on the training loss at w),

    grad_alpha = dL_val(w', alpha)/dalpha - xi * d2L_train(w, alpha)/dalpha dw . v,   v = dL_val(w', alpha)/dw'

where the Hessian-vector product is a central finite difference,

    [dL_train(w + r v, alpha)/dalpha - dL_train(w - r v, alpha)/dalpha] / (2 r),   r = eps / ||v||  (eps = 0.01)

The virtual step is exactly the step the SGD weight optimizer would take from
the gradient (its momentum buffer, dampening, Nesterov and weight decay), and xi
is its current learning rate. The network is never copied: every extra forward
goes through ``torch.func.functional_call`` with the virtual weights, and with
private copies of the buffers, so none of them updates the running statistics of
any norm (BN, BGN, or anything else that keeps state in buffers). Running
statistics therefore follow the weight step's forwards only, in both orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["ArchGradient", "stateless_loss", "first_order_gradient", "virtual_sgd_step", "unrolled_gradient"]

Batch = tuple[Tensor, Tensor]


@dataclass
class ArchGradient:
    """The architecture gradient (one tensor per alpha) and the validation loss it came from."""

    grads: list[Tensor]
    val_loss: Tensor


def stateless_loss(net: nn.Module, batch: Batch, weights: dict[str, Tensor] | None = None) -> Tensor:
    """Cross-entropy of ``net`` on ``batch`` (train mode) at ``weights``, leaving every buffer of ``net`` as it was.

    ``weights`` replaces parameters by name (the rest are the module's own, alpha
    included); buffers are replaced by copies, which the forward may update.
    """
    x, y = batch
    substitutes: dict[str, Tensor] = {name: b.clone() for name, b in net.named_buffers()}
    substitutes.update(weights or {})
    return F.cross_entropy(functional_call(net, substitutes, (x,)), y)


def first_order_gradient(net: nn.Module, alphas: list[Tensor], val_batch: Batch) -> ArchGradient:
    """dL_val(w, alpha)/dalpha at the current weights (DARTS' first-order approximation, xi = 0)."""
    loss = stateless_loss(net, val_batch)
    return ArchGradient(list(torch.autograd.grad(loss, alphas)), loss.detach())


def _param_groups(optimizer: torch.optim.Optimizer) -> dict[int, dict]:
    return {id(p): group for group in optimizer.param_groups for p in group["params"]}


def virtual_sgd_step(named_weights: list[tuple[str, Tensor]], grads: list[Tensor | None],
                     optimizer: torch.optim.SGD) -> dict[str, Tensor]:
    """The weights one ``optimizer.step()`` would give from ``grads``, computed without touching the optimizer.

    Follows torch.optim.SGD's update: d = g + wd * w; with momentum m, the buffer
    becomes m * buf + (1 - dampening) * d (or d on the first step) and the step is
    the buffer (Nesterov: d + m * buffer); w' = w - lr * step. A weight without a
    gradient takes the step its weight decay and momentum alone would give.
    """
    groups = _param_groups(optimizer)
    out: dict[str, Tensor] = {}
    for (name, w), g in zip(named_weights, grads):
        group = groups[id(w)]
        d = torch.zeros_like(w) if g is None else g.detach()
        if group["weight_decay"]:
            d = d + group["weight_decay"] * w.detach()
        momentum = group["momentum"]
        if momentum:
            buf = optimizer.state.get(w, {}).get("momentum_buffer")
            buf = d if buf is None else momentum * buf + (1 - group["dampening"]) * d
            d = d + momentum * buf if group["nesterov"] else buf
        out[name] = w.detach() - group["lr"] * d
    return out


def _flat_norm(tensors: list[Tensor]) -> Tensor:
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors))  # type: ignore[arg-type]


def unrolled_gradient(net: nn.Module, named_weights: list[tuple[str, Tensor]], alphas: list[Tensor],
                      optimizer: torch.optim.SGD, train_batch: Batch, val_batch: Batch,
                      fd_epsilon: float = 0.01) -> ArchGradient:
    """The second-order architecture gradient (module docstring), xi = the optimizer's current learning rate.

    ``named_weights`` are the parameters the optimizer updates (alpha excluded),
    all in one param group's learning rate (the task builds it so).
    """
    weights = [w for _, w in named_weights]
    lrs = {group["lr"] for group in optimizer.param_groups}
    if len(lrs) != 1:
        raise ValueError(f"the unrolled step needs one weight learning rate, the optimizer has {sorted(lrs)}")
    xi = lrs.pop()
    # w' = the weight optimizer's virtual step on the training loss at w
    train_grads = torch.autograd.grad(stateless_loss(net, train_batch), weights, allow_unused=True)
    unrolled = {name: w.requires_grad_(True) for name, w in virtual_sgd_step(named_weights, list(train_grads), optimizer).items()}
    # dL_val(w', alpha)/dalpha and v = dL_val(w', alpha)/dw'
    val_loss = stateless_loss(net, val_batch, unrolled)
    grads = torch.autograd.grad(val_loss, [*alphas, *unrolled.values()], allow_unused=True)
    direct = [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, grads[: len(alphas)])]
    vector = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads[len(alphas):])]
    # Hessian-vector product d2L_train/dalpha dw . v by central differences around w
    norm = _flat_norm(vector)
    if float(norm) == 0.0:  # the validation loss does not depend on the weights: no implicit term
        return ArchGradient(direct, val_loss.detach())
    r = float(fd_epsilon / norm)
    grads_at = []
    for sign in (1.0, -1.0):
        shifted = {name: w.detach() + sign * r * v for (name, w), v in zip(named_weights, vector)}
        grads_at.append(torch.autograd.grad(stateless_loss(net, train_batch, shifted), alphas))
    hessian_vector = [(gp - gn) / (2 * r) for gp, gn in zip(*grads_at)]
    return ArchGradient([d - xi * h for d, h in zip(direct, hessian_vector)], val_loss.detach())
