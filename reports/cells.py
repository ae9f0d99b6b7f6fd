"""Pictures of searched DARTS cells, from the genotype string a NAS record carries.

A record's ``genotype`` is DARTS' text form (the NAS task prints it that way)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=range(2, 6))

Two ``(op, input)`` edges per intermediate node; inputs 0 and 1 are the cell's
inputs c_{k-2} and c_{k-1}, input j >= 2 is node j - 2; the output c_k
concatenates the ``*_concat`` states. The parser reads only literals (Python's
``ast``; ``range(a, b)`` allowed), tolerates tuples or lists and a missing
concat (then every intermediate node), and refuses anything else with a
message, so a stray record never runs code. Drawn with matplotlib alone.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from .plots import _STYLE, _save
from .record import RunRecord
from .tables import norm_order, slug

GENOTYPE_KEY = "genotype"
_OP_COLOURS = {"skip_connect": "#d55e00", "max_pool_3x3": "#0072b2", "avg_pool_3x3": "#56b4e9",
               "sep_conv_3x3": "#009e73", "sep_conv_5x5": "#66c2a5", "dil_conv_3x3": "#cc79a7",
               "dil_conv_5x5": "#e5a5cf", "none": "#999999"}
CELL_FIGSIZE = (7.0, 2.6)


class GenotypeParseError(ValueError):
    """A genotype string that is not DARTS' Genotype(...) form; the message says what is wrong."""


@dataclass(frozen=True)
class Cell:
    edges: tuple[tuple[str, int], ...]  # two per intermediate node, in node order
    concat: tuple[int, ...]

    @property
    def steps(self) -> int:
        return len(self.edges) // 2


@dataclass(frozen=True)
class ParsedGenotype:
    normal: Cell
    reduce: Cell


def _literal(node: ast.AST, field: str) -> Any:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 2):
        return list(range(*(_literal(a, field) for a in node.args)))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise GenotypeParseError(f"{field}: {ast.unparse(node)!r} is not a literal") from None


def _cell(name: str, edges: Any, concat: Any) -> Cell:
    if not isinstance(edges, (list, tuple)) or not edges or len(edges) % 2:
        raise GenotypeParseError(f"{name}: expected an even, non-empty list of (op, input) pairs, got {edges!r}")
    out = []
    for position, edge in enumerate(edges):
        node = position // 2
        if (not isinstance(edge, (list, tuple)) or len(edge) != 2 or not isinstance(edge[0], str)
                or not isinstance(edge[1], int) or not 0 <= edge[1] < node + 2):
            raise GenotypeParseError(f"{name}: edge {position} is {edge!r}; node {node} takes (op, input) with "
                                     f"input in 0..{node + 1}")
        out.append((edge[0], edge[1]))
    states = len(out) // 2 + 2
    if concat is None:
        concat = list(range(2, states))
    if not isinstance(concat, (list, tuple)) or not all(isinstance(i, int) and 2 <= i < states for i in concat):
        raise GenotypeParseError(f"{name}_concat: expected node indices in 2..{states - 1}, got {concat!r}")
    return Cell(tuple(out), tuple(concat))


def parse_genotype(text: str) -> ParsedGenotype:
    """The normal and reduction cell of a DARTS genotype string (see the module docstring)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        tree = None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        raise GenotypeParseError(f"not of the form Genotype(normal=[...], normal_concat=[...], reduce=[...], "
                                 f"reduce_concat=[...]): {text[:80]!r}")
    fields = {kw.arg: _literal(kw.value, str(kw.arg)) for kw in tree.keywords}
    unknown = set(fields) - {"normal", "normal_concat", "reduce", "reduce_concat"}
    if tree.args or unknown or "normal" not in fields or "reduce" not in fields:
        raise GenotypeParseError("give the keywords normal and reduce (and optionally normal_concat, reduce_concat)"
                                 + (f"; unknown: {', '.join(sorted(map(str, unknown)))}" if unknown else ""))
    return ParsedGenotype(_cell("normal", fields["normal"], fields.get("normal_concat")),
                          _cell("reduce", fields["reduce"], fields.get("reduce_concat")))


def _positions(steps: int) -> dict[int | str, tuple[float, float]]:
    pos: dict[int | str, tuple[float, float]] = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for i in range(steps):
        pos[i + 2] = (1.4 + 1.25 * i, 0.6 if i % 2 == 0 else -0.6)
    pos["out"] = (1.4 + 1.25 * steps, 0.0)
    return pos


def _draw_cell(ax, cell: Cell, title: str) -> None:
    pos = _positions(cell.steps)
    for node, (x, y) in pos.items():
        label = {0: "c$_{k-2}$", 1: "c$_{k-1}$", "out": "c$_k$"}.get(node, str(node if node == "out" else node - 2))
        face = "#eeeeee" if node in (0, 1, "out") else "#fff5cc"
        ax.text(x, y, label, ha="center", va="center", fontsize=7, zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": face, "edgecolor": "#333333", "linewidth": 0.6})
    for position, (op, source) in enumerate(cell.edges):
        target = position // 2 + 2
        colour = _OP_COLOURS.get(op, "#333333")
        rad = 0.15 if position % 2 == 0 else -0.15
        (x0, y0), (x1, y1) = pos[source], pos[target]
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=7, color=colour,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=9, shrinkB=9, lw=1.0, zorder=1))
        mx, my = (x0 + x1) / 2 + rad * (y1 - y0) * 0.5, (y0 + y1) / 2 - rad * (x1 - x0) * 0.5
        ax.text(mx, my, op, fontsize=4.5, color=colour, ha="center", va="center", zorder=2,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.2, "alpha": 0.8})
    for node in cell.concat:
        ax.add_patch(FancyArrowPatch(pos[node], pos["out"], arrowstyle="-|>", mutation_scale=6, color="#999999",
                                     shrinkA=9, shrinkB=9, lw=0.6, zorder=1))
    skips = sum(op == "skip_connect" for op, _ in cell.edges)
    ax.set_title(f"{title} ({skips} skip connection{'s' if skips != 1 else ''})", fontsize=7)
    ax.set_xlim(-0.5, 1.4 + 1.25 * cell.steps + 0.5)
    ax.set_ylim(-1.5, 1.5)
    ax.axis("off")


def draw_genotype(genotype: ParsedGenotype, title: str) -> Figure:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=CELL_FIGSIZE, layout="constrained")
        normal, reduce = fig.subplots(1, 2)
        _draw_cell(normal, genotype.normal, "normal cell")
        _draw_cell(reduce, genotype.reduce, "reduction cell")
        fig.suptitle(title, fontsize=8)
    return fig


@dataclass(frozen=True)
class CellFigure:
    """One drawn genotype and the runs that have it."""

    stem: str
    title: str
    runs: tuple[RunRecord, ...]
    paths: tuple[Path, ...] = ()


def genotype_groups(records: list[RunRecord]) -> tuple[list[CellFigure], list[str]]:
    """Per table context, per distinct genotype: the finished runs that carry it; and parse problems."""
    groups: dict[tuple[Any, str], list[RunRecord]] = {}
    problems = []
    for r in sorted(records, key=lambda r: str(r.path)):
        text = r.raw.get(GENOTYPE_KEY)
        if not r.finished or not isinstance(text, str):
            continue
        try:
            parse_genotype(text)
        except GenotypeParseError as exc:
            problems.append(f"{r.path}: key 'genotype' cannot be drawn: {exc}")
            continue
        groups.setdefault((r.context, text), []).append(r)
    figures = []
    counters: dict[Any, int] = {}
    for (context, _text), runs in groups.items():
        counters[context] = counters.get(context, 0) + 1
        order = norm_order()
        ranked = sorted(runs, key=lambda r: (order.index(r.norm_name) if r.norm_name in order else len(order),
                                             r.norm_num_groups or 0, r.norm_label))
        names = list(dict.fromkeys(r.norm_label for r in ranked))
        name = runs[0].raw.get("genotype_name")
        who = ", ".join(names) if len(names) <= 4 else f"{len(names)} norms"
        seeds = sorted({r.seed for r in runs})
        head = f"{name} cell" if isinstance(name, str) and name != "searched" else "searched cell"
        title = f"{head}: {who}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        stem = slug(context.task, context.dataset, context.model, *context.parts(), f"cell{counters[context]}")
        figures.append(CellFigure(stem, title, tuple(runs)))
    return figures, problems


def plot_genotypes(records: list[RunRecord], out_dir: Path) -> tuple[list[CellFigure], list[str]]:
    """Draw every distinct genotype of every context (PNG and SVG); returns the figures and problems."""
    figures, problems = genotype_groups(records)
    drawn = []
    for figure in figures:
        genotype = parse_genotype(figure.runs[0].raw[GENOTYPE_KEY])
        with matplotlib.rc_context(_STYLE):
            paths = _save(draw_genotype(genotype, figure.title), out_dir, figure.stem)
        drawn.append(CellFigure(figure.stem, figure.title, figure.runs, tuple(paths)))
    return drawn, problems
