"""DARTS genotypes: the op set, the published cells, parsing, printing and derivation from alpha.

A genotype names, for the normal and the reduction cell, two ``(op, input)``
edges per intermediate node (inputs 0 and 1 are the cell's two inputs, input
``k >= 2`` is node ``k - 2``) and which states the cell concatenates. Its text
form is the one DARTS prints and users paste from search logs::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

(``range(2, 6)`` is accepted for the concat lists). It is parsed with Python's
``ast`` and only literals are accepted, so a config string never runs code.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

import torch

from ..runner.checks import suggest

__all__ = [
    "PRIMITIVES", "NONE", "SKIP", "Genotype", "GenotypeError", "PUBLISHED", "parse_genotype", "resolve_genotype",
    "derive_genotype", "edge_entropy",
]

# The DARTS search space, in DARTS' order (the alpha columns follow it).
PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5")
NONE = "none"
SKIP = "skip_connect"
Edge = tuple[str, int]


class GenotypeError(ValueError):
    """A genotype name or string that does not describe a DARTS cell; the message says why."""


@dataclass(frozen=True)
class Genotype:
    """Two cells of a DARTS network: per node two ``(op, input)`` edges, and the concatenated states."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for cell in ("normal", "reduce"):
            _check_cell(cell, getattr(self, cell), getattr(self, f"{cell}_concat"))

    @property
    def steps(self) -> int:
        """Intermediate nodes per cell."""
        return len(self.normal) // 2

    def num_skip_connects(self, cell: str = "normal") -> int:
        return sum(op == SKIP for op, _ in getattr(self, cell))

    def __str__(self) -> str:
        def edges(cell: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"('{op}', {index})" for op, index in cell) + "]"

        return (f"Genotype(normal={edges(self.normal)}, normal_concat={list(self.normal_concat)}, "
                f"reduce={edges(self.reduce)}, reduce_concat={list(self.reduce_concat)})")


def _check_cell(cell: str, edges: tuple[Edge, ...], concat: tuple[int, ...]) -> None:
    if not edges or len(edges) % 2:
        raise GenotypeError(f"genotype {cell}: {len(edges)} edges; a cell has two edges per node")
    for position, (op, index) in enumerate(edges):
        node = position // 2
        if op not in PRIMITIVES or op == NONE:
            ops = [p for p in PRIMITIVES if p != NONE]
            raise GenotypeError(f"genotype {cell}: unknown op {op!r}{suggest(str(op), ops)}; ops: {', '.join(ops)}")
        if not isinstance(index, int) or not 0 <= index < node + 2:
            raise GenotypeError(f"genotype {cell}: node {node} takes input {index!r}; it may take 0..{node + 1} "
                                "(the two cell inputs and the nodes before it)")
    states = len(edges) // 2 + 2
    if not concat or any(not isinstance(i, int) or not 2 <= i < states for i in concat) or len(set(concat)) != len(concat):
        raise GenotypeError(f"genotype {cell}_concat={list(concat)}: it must list distinct nodes in 2..{states - 1}")


# The cells of the DARTS paper (Liu et al., 2019): V1 from the first-order search, V2 (the paper's
# "DARTS (second order)" cell, 2.76% CIFAR-10 test error) from the second-order search.
_V1 = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
       "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
       "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
       "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])")
_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
       "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
       "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
       "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def _literal(node: ast.AST, what: str):
    """A list/tuple/int/str literal, or ``range(a, b)``; anything else is refused."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        bounds = [_literal(a, what) for a in node.args]
        if len(bounds) in (1, 2) and all(isinstance(b, int) for b in bounds):
            return list(range(*bounds))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise GenotypeError(f"genotype {what}: {ast.unparse(node)!r} is not a literal list") from None


def parse_genotype(text: str) -> Genotype:
    """A :class:`Genotype` from its DARTS text form (``Genotype(normal=[...], normal_concat=[...], ...)``)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        tree = None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        raise GenotypeError(f"genotype {text!r} is neither a published name ({', '.join(PUBLISHED)}) nor of the form "
                            "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], "
                            "reduce_concat=[2, 3, 4, 5])")
    fields = {"normal", "normal_concat", "reduce", "reduce_concat"}
    given = {kw.arg: kw.value for kw in tree.keywords}
    if tree.args or set(given) != fields:
        raise GenotypeError(f"genotype: give exactly the keywords {', '.join(sorted(fields))} (got {sorted(map(str, given))})")
    values = {name: _literal(node, name) for name, node in given.items()}
    cells = {}
    for cell in ("normal", "reduce"):
        edges = values[cell]
        if not isinstance(edges, (list, tuple)) or not all(
                isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str) for e in edges):
            raise GenotypeError(f"genotype {cell}: expected a list of (op, input) pairs, got {edges!r}")
        cells[cell] = tuple((str(op), index) for op, index in edges)
    concat = {c: values[c] for c in ("normal_concat", "reduce_concat")}
    for name, value in concat.items():
        if not isinstance(value, (list, tuple)):
            raise GenotypeError(f"genotype {name}: expected a list of node indices, got {value!r}")
    if len(cells["normal"]) != len(cells["reduce"]):
        raise GenotypeError("genotype: the normal and reduction cells must have the same number of nodes")
    return Genotype(cells["normal"], tuple(concat["normal_concat"]), cells["reduce"], tuple(concat["reduce_concat"]))


PUBLISHED: dict[str, Genotype] = {"DARTS_V1": parse_genotype(_V1), "DARTS_V2": parse_genotype(_V2)}


def resolve_genotype(value: str) -> tuple[str, Genotype]:
    """``(name, genotype)`` of a published name (``DARTS_V2``) or a genotype string (named ``custom``)."""
    text = value.strip()
    if text in PUBLISHED:
        return text, PUBLISHED[text]
    if not text.startswith("Genotype("):
        raise GenotypeError(f"unknown genotype {text!r}{suggest(text, PUBLISHED)}; published: {', '.join(PUBLISHED)}, "
                            "or a string Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])")
    return "custom", parse_genotype(text)


def _derive_cell(weights: torch.Tensor, steps: int) -> tuple[Edge, ...]:
    """DARTS' rule: per node, the two incoming edges whose strongest non-none op weighs most; on each, that op."""
    none = PRIMITIVES.index(NONE)
    keep = [k for k in range(len(PRIMITIVES)) if k != none]
    gene: list[Edge] = []
    start, inputs = 0, 2
    for _ in range(steps):
        w = weights[start:start + inputs][:, keep]
        best_value, best_op = w.max(dim=1)
        # stable order on ties (the lower input first), as sorted() in DARTS
        edges = sorted(range(inputs), key=lambda j: -float(best_value[j]))[:2]
        gene.extend((PRIMITIVES[keep[int(best_op[j])]], j) for j in edges)
        start += inputs
        inputs += 1
    return tuple(gene)


def derive_genotype(weights_normal: torch.Tensor, weights_reduce: torch.Tensor, steps: int = 4,
                    multiplier: int = 4) -> Genotype:
    """The discrete cell of softmax(alpha) (edges x ops, one row per edge in node order)."""
    expected = sum(range(2, steps + 2))
    for name, w in (("normal", weights_normal), ("reduce", weights_reduce)):
        if tuple(w.shape) != (expected, len(PRIMITIVES)):
            raise ValueError(f"{name} weights of shape {tuple(w.shape)}; {steps} nodes need ({expected}, {len(PRIMITIVES)})")
    concat = tuple(range(2 + steps - multiplier, steps + 2))
    return Genotype(_derive_cell(weights_normal.detach().cpu(), steps), concat,
                    _derive_cell(weights_reduce.detach().cpu(), steps), concat)


def edge_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each edge's op distribution; log(8) = 2.08 is uniform, 0 is one op."""
    w = weights.detach().clamp_min(1e-12)
    return -(w * w.log()).sum(dim=-1)


MAX_EDGE_ENTROPY = math.log(len(PRIMITIVES))
