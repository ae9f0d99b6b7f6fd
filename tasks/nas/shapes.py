"""The dry run of the NAS task: does the norm fit every norm slot of the supernet and the final network?

A real forward pass of the paper-size networks costs seconds per norm, and a
sweep checks every grid point before it starts. The input shapes of the norm
slots do not depend on the norm, so they are recorded once per network
structure (a forward pass on the meta device, with probes in the norm slots,
which computes shapes only), and each norm is then checked by building its layer
for every distinct slot shape and running a train-mode forward on zeros at
batch 2: the same check a forward pass of the whole network would make, in
milliseconds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
from torch import Tensor, nn

from normlayers import create_norm, resolve_norm
from normlayers.spec import SpecLike

from .genotypes import parse_genotype
from .network import EvalNetwork
from .norms import without_affine
from .ops import NormFactory
from .supernet import SuperNet

__all__ = ["COVERING_GENOTYPE", "supernet_slots", "network_slots", "check_supernet", "check_network"]

# Every op on the cell inputs (stride 2 in reduction cells): a network of this cell has a norm of every shape
# a network of any searched cell can have, so the dry run of a search checks the final network too.
_EDGES = "[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('dil_conv_3x3', 0), ('dil_conv_5x5', 1), " \
         "('skip_connect', 0), ('max_pool_3x3', 1), ('avg_pool_3x3', 0), ('skip_connect', 1)]"
COVERING_GENOTYPE = parse_genotype(f"Genotype(normal={_EDGES}, normal_concat=[2, 3, 4, 5], reduce={_EDGES}, "
                                   "reduce_concat=[2, 3, 4, 5])")

Shape = tuple[int, ...]  # a norm slot's input shape without the batch dimension
_TRACE_NORM = "bn"  # any norm with an affine argument: the trace tells the stem's slots from the ops' by it


class _Probe(nn.Module):
    """Stands in a norm slot and records the input shape it sees, under the slot's role."""

    def __init__(self, role: str, record: set[tuple[str, Shape]]) -> None:
        super().__init__()
        self.role, self.record = role, record

    def forward(self, x: Tensor) -> Tensor:
        self.record.add((self.role, tuple(x.shape[1:])))
        return x


def _probing(record: set[tuple[str, Shape]]) -> Callable[[SpecLike], NormFactory]:
    def factory_of(spec: SpecLike) -> NormFactory:
        role = "ops" if resolve_norm(spec).kwargs.get("affine") is False else "affine"
        return lambda channels, activation=True: _Probe(role, record)

    return factory_of


@lru_cache(maxsize=32)
def supernet_slots(channels: int, layers: int, num_classes: int, in_channels: int,
                   size: int) -> dict[str, tuple[Shape, ...]]:
    """Input shapes of the supernet's norm slots: ``affine`` (the stem, the user's spec), ``ops`` (affine=false)."""
    record: set[tuple[str, Shape]] = set()
    with torch.device("meta"):
        net = SuperNet(channels, num_classes, layers, _TRACE_NORM, in_channels, norm_factory_of=_probing(record))
        net.eval()(torch.zeros(2, in_channels, size, size))
    return {role: tuple(sorted(shape for r, shape in record if r == role)) for role in ("affine", "ops")}


@lru_cache(maxsize=32)
def network_slots(genotype: str, channels: int, layers: int, num_classes: int, in_channels: int, size: int,
                  auxiliary: bool) -> tuple[Shape, ...]:
    """Input shapes of the final network's norm slots, the auxiliary head's included."""
    record: set[tuple[str, Shape]] = set()
    with torch.device("meta"):
        net = EvalNetwork(parse_genotype(genotype), channels, num_classes, layers, _TRACE_NORM, in_channels,
                          auxiliary, norm_factory_of=_probing(record))
        head = net.auxiliary_head
        if head is not None:  # the head runs in training only: run it on the maps it would see

            def run_head(module: nn.Module, args: tuple, out: Tensor) -> None:
                head(out)

            net.cells[net.aux_position].register_forward_hook(run_head)
        net.eval()(torch.zeros(2, in_channels, size, size))
    return tuple(sorted(shape for _, shape in record))


def _check(spec: SpecLike, shapes: tuple[Shape, ...]) -> None:
    for shape in shapes:
        with torch.no_grad():
            create_norm(spec, shape[0]).train()(torch.zeros(2, *shape))


def check_supernet(norm: SpecLike, slots: dict[str, tuple[Shape, ...]]) -> None:
    """Raise NormSpecError when ``norm`` (or its affine=false form in the ops) does not fit a supernet slot."""
    _check(norm, slots["affine"])
    _check(without_affine(norm), slots["ops"])


def check_network(norm: SpecLike, shapes: tuple[Shape, ...]) -> None:
    """Raise NormSpecError when ``norm`` does not fit a slot of the final network."""
    _check(norm, shapes)
