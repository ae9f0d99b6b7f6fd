"""The evaluation network of DARTS: a genotype's cells stacked, trained from scratch.

As in the paper's CIFAR network: a 3C stem, ``layers`` cells with reductions at
1/3 and 2/3 of the depth, drop-path on every edge that is not an identity, and
an auxiliary classifier on the 8x8 maps after the second reduction cell (DARTS'
head pools 8x8 to 2x2 and ends in a 2x2 convolution, so it needs 32x32 inputs).
The norm under test, with its own affine parameters, is in every norm slot,
the auxiliary head's included. As in the ops, the stem's norm has no activation
of its own (``activation=False``): every state of the network is pre-activation
and each op that reads it starts with a ReLU. Only the auxiliary head's norms
are followed by a ReLU of their own (:func:`normlayers.activation_after`).
``weight_standardization`` standardizes every convolution
(:func:`normlayers.standardize_convolutions`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from normlayers import activation_after, standardize_convolutions
from normlayers.spec import SpecLike

from .genotypes import Genotype
from .norms import norm_factory
from .ops import FactorizedReduce, NormFactory, ReLUConvNorm, build_op
from .supernet import reduction_positions

__all__ = ["drop_path", "EvalCell", "AuxiliaryHead", "EvalNetwork", "AUX_INPUT_SIZE"]

AUX_INPUT_SIZE = 8  # the auxiliary head's input maps are 8x8 (32x32 images after two reductions)


def drop_path(x: Tensor, drop_prob: float) -> Tensor:
    """Zero whole samples of an edge's output with probability ``drop_prob``, rescaling the kept ones."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool, norm: NormFactory) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_prev_prev, channels, norm) if reduction_prev
                            else ReLUConvNorm(c_prev_prev, channels, 1, 1, 0, norm))
        self.preprocess1 = ReLUConvNorm(c_prev, channels, 1, 1, 0, norm)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.inputs = tuple(index for _, index in edges)
        self.ops = nn.ModuleList(build_op(op, channels, 2 if reduction and index < 2 else 1, norm) for op, index in edges)
        # drop-path skips identities (stride-1 skip connections), as DARTS does
        self.droppable = tuple(not (op == "skip_connect" and not (reduction and index < 2)) for op, index in edges)
        self.steps = len(edges) // 2
        self.multiplier = len(self.concat)

    def forward(self, s0: Tensor, s1: Tensor, drop_prob: float) -> Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            node = 0
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.inputs[k]])
                if self.training and drop_prob > 0 and self.droppable[k]:
                    h = drop_path(h, drop_prob)
                node = node + h
            states.append(node)  # type: ignore[arg-type]
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier for 8x8 maps: pool to 2x2, 1x1 conv to 128, 2x2 conv to 768, linear."""

    def __init__(self, channels: int, num_classes: int, norm: NormFactory) -> None:
        super().__init__()
        norm1, norm2 = norm(128), norm(768)
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False), norm1, activation_after(norm1),
            nn.Conv2d(128, 768, 2, bias=False), norm2, activation_after(norm2),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (AUX_INPUT_SIZE, AUX_INPUT_SIZE):
            raise ValueError(f"the auxiliary head needs {AUX_INPUT_SIZE}x{AUX_INPUT_SIZE} maps (32x32 inputs), "
                             f"got {tuple(x.shape[-2:])}")
        return self.classifier(torch.flatten(self.features(x), 1))


class EvalNetwork(nn.Module):
    """DARTS' CIFAR evaluation network for a genotype (20 cells, C=36 and an auxiliary head in the paper).

    ``forward`` returns ``(logits, aux_logits)``; ``aux_logits`` is None outside
    training or without the head. ``drop_path_prob`` is set by the training loop
    (DARTS raises it linearly over the epochs).

    Example:
        >>> from tasks.nas.genotypes import PUBLISHED
        >>> net = EvalNetwork(PUBLISHED["DARTS_V2"], channels=8, num_classes=10, layers=5, norm="gn:num_groups=4",
        ...                   in_channels=1, auxiliary=True)
        >>> logits, aux = net.train()(torch.zeros(2, 1, 32, 32))
        >>> logits.shape, aux.shape
        (torch.Size([2, 10]), torch.Size([2, 10]))
    """

    def __init__(self, genotype: Genotype, channels: int, num_classes: int, layers: int, norm: SpecLike,
                 in_channels: int = 3, auxiliary: bool = False, stem_multiplier: int = 3,
                 norm_factory_of: Callable[[SpecLike], NormFactory] = norm_factory,
                 weight_standardization: bool = False) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"a DARTS network needs at least 3 cells, got {layers}")
        make_norm = norm_factory_of(norm)
        self.drop_path_prob = 0.0
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  make_norm(c_curr, activation=False))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        reductions = reduction_positions(layers)
        self.aux_position = reductions[1]
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cell = EvalCell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, make_norm)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, make_norm) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        if weight_standardization:
            standardize_convolutions(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1)), aux

    def num_parameters(self, auxiliary: bool = False) -> int:
        """Parameters of the network; the auxiliary head (a training aid) only when asked, as DARTS counts."""
        return sum(p.numel() for name, p in self.named_parameters() if auxiliary or not name.startswith("auxiliary_head."))
