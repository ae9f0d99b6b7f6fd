"""The norm specs of the two networks: the supernet's without affine parameters, the final network's as given.

DARTS builds every BatchNorm of its supernet with ``affine=False``: a learned
scale after each op would let the weights rescale an op's output and compete
with alpha for the same role. The supernet therefore gets the user's spec with
``affine=false`` added wherever the registry entry has an ``affine`` argument
(the ``none`` entry has none and stays as it is); the stem and the final network
keep the spec as given (registry default: affine). The decision reads the
registry entry's declared parameters, never a class name.
"""

from __future__ import annotations

import functools

from normlayers import NormSpec, create_norm, resolve_norm
from normlayers.spec import SpecLike

from .ops import NormFactory

__all__ = ["without_affine", "norm_factory"]


def without_affine(spec: SpecLike) -> NormSpec:
    """``spec`` with ``affine=false`` where its registry entry takes ``affine`` (canonical form)."""
    resolved = resolve_norm(spec)
    if not any(p.name == "affine" for p in resolved.entry.params):
        return resolved.spec
    return resolve_norm(NormSpec.make(resolved.entry.name, {**resolved.spec.args, "affine": False})).spec


def norm_factory(spec: SpecLike) -> NormFactory:
    """``channels -> norm layer`` for ``spec`` (resolved once, so a bad spec fails here)."""
    return functools.partial(create_norm, resolve_norm(spec).spec)
