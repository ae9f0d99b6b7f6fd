"""The DARTS supernet: every candidate op on every edge, mixed by softmax(alpha).

Cells have two inputs (the two previous cells' outputs) and four intermediate
nodes; node i sums one mixed op per earlier state, so a cell has 2+3+4+5 = 14
edges. Cells at 1/3 and 2/3 of the depth are reduction cells (stride 2 on the
edges from the cell inputs, channels doubled). All normal cells share one alpha
(14 x 8) and all reduction cells another; both are ``nn.Parameter`` s of this
module, so checkpoints and devices handle them like any weight, but
:meth:`weight_parameters` leaves them out: the weight optimizer and its weight
decay never see them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from normlayers import standardize_convolutions
from normlayers.spec import SpecLike

from .genotypes import PRIMITIVES, Genotype, derive_genotype
from .norms import norm_factory, without_affine
from .ops import FactorizedReduce, NormFactory, ReLUConvNorm, build_op

__all__ = ["MixedOp", "SearchCell", "SuperNet", "ARCH_PARAMETER_NAMES", "reduction_positions"]

ARCH_PARAMETER_NAMES = ("alphas_normal", "alphas_reduce")


def reduction_positions(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells: 1/3 and 2/3 of the depth (DARTS)."""
    return layers // 3, 2 * layers // 3


class MixedOp(nn.Module):
    """All candidate ops of one edge; the output is their sum weighted by the edge's softmax(alpha)."""

    def __init__(self, channels: int, stride: int, norm: NormFactory) -> None:
        super().__init__()
        self.ops = nn.ModuleList(build_op(p, channels, stride, norm, norm_after_pool=True) for p in PRIMITIVES)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # type: ignore[return-value]


class SearchCell(nn.Module):
    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool, norm: NormFactory) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        self.preprocess0 = (FactorizedReduce(c_prev_prev, channels, norm) if reduction_prev
                            else ReLUConvNorm(c_prev_prev, channels, 1, 1, 0, norm))
        self.preprocess1 = ReLUConvNorm(c_prev, channels, 1, 1, 0, norm)
        self.edges = nn.ModuleList(
            MixedOp(channels, 2 if reduction and j < 2 else 1, norm) for i in range(steps) for j in range(2 + i)
        )

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            node = sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(node)  # type: ignore[arg-type]
        return torch.cat(states[-self.multiplier:], dim=1)


class SuperNet(nn.Module):
    """The search network of DARTS (8 cells, C=16 in the paper) with a registry norm.

    Args:
        channels: C of the first cells (doubled at each reduction).
        num_classes: classifier outputs.
        layers: cells (at least 3: the two reduction cells and a normal one).
        norm: the user's norm spec; the stem uses it as given, every op with ``affine=false``.
        in_channels: image channels.
        steps, multiplier, stem_multiplier: DARTS' 4 nodes, 4 concatenated states, 3C stem.
        norm_factory_of: spec -> norm factory (the dry run passes one that records the norm slots' input shapes).
        weight_standardization: standardize every convolution (normlayers.standardize_convolutions).

    Every norm, the stem's included, is built with ``activation=False``: each state
    is pre-activation, and the ops that read it start with their own ReLU.

    Example:
        >>> net = SuperNet(channels=4, num_classes=10, layers=3, norm="bgn:num_groups=2", in_channels=1)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
        >>> str(net.genotype()).startswith("Genotype(normal=[")
        True
    """

    def __init__(self, channels: int, num_classes: int, layers: int, norm: SpecLike, in_channels: int = 3,
                 steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                 norm_factory_of: Callable[[SpecLike], NormFactory] = norm_factory,
                 weight_standardization: bool = False) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"a DARTS network needs at least 3 cells, got {layers}")
        self.steps, self.multiplier = steps, multiplier
        self.supernet_norm = without_affine(norm)
        op_norm = norm_factory_of(self.supernet_norm)
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  norm_factory_of(norm)(c_curr, activation=False))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        reductions = reduction_positions(layers)
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(steps, multiplier, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, op_norm))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        num_edges = sum(range(2, steps + 2))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(num_edges, len(PRIMITIVES)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(num_edges, len(PRIMITIVES)))
        if weight_standardization:
            standardize_convolutions(self)

    def forward(self, x: Tensor) -> Tensor:
        weights_normal = F.softmax(self.alphas_normal, dim=-1)
        weights_reduce = F.softmax(self.alphas_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights_reduce if cell.reduction else weights_normal)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def named_weight_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Every parameter except the two alphas: what the weight optimizer (and its weight decay) gets."""
        return [(n, p) for n, p in self.named_parameters() if n not in ARCH_PARAMETER_NAMES]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_weight_parameters()]

    def op_weights(self) -> tuple[Tensor, Tensor]:
        """softmax(alpha) of the normal and the reduction cell (edges x ops)."""
        return F.softmax(self.alphas_normal.detach(), dim=-1), F.softmax(self.alphas_reduce.detach(), dim=-1)

    def genotype(self) -> Genotype:
        normal, reduce = self.op_weights()
        return derive_genotype(normal, reduce, self.steps, self.multiplier)
