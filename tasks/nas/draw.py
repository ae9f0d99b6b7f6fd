"""Pictures of a genotype's two cells, drawn with matplotlib (graphviz is not needed).

Each cell is a left-to-right graph: the two inputs c_{k-2} and c_{k-1}, the
intermediate nodes, and the output c_k, which concatenates the nodes the
genotype lists. Edges are coloured by op family (skip connections stand out,
since their number is what skip-connect collapse is about) and labelled with
the op.

    python -m tasks.nas.draw DARTS_V2 cells.png                # one genotype
    python -m tasks.nas.draw --runs runs/nas_quick cells.png   # every searched cell of a sweep, one row per run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .genotypes import Genotype, resolve_genotype

__all__ = ["draw_genotype", "draw_genotypes", "draw_runs", "GENOTYPE_FIGURE"]

GENOTYPE_FIGURE = "genotype.png"
_COLOURS = {"skip_connect": "#d62728", "max_pool_3x3": "#1f77b4", "avg_pool_3x3": "#0f8b8d",
            "sep_conv_3x3": "#2ca02c", "sep_conv_5x5": "#0b5d1e", "dil_conv_3x3": "#9467bd", "dil_conv_5x5": "#8c2d8c"}


def _positions(steps: int) -> dict[int | str, tuple[float, float]]:
    pos: dict[int | str, tuple[float, float]] = {0: (0.0, 1.5), 1: (0.0, -1.5)}
    for i in range(steps):
        pos[i + 2] = (1.5 + 1.3 * i, 0.75 if i % 2 == 0 else -0.75)
    pos["out"] = (1.5 + 1.3 * steps, 0.0)
    return pos


def _draw_cell(ax, edges: tuple[tuple[str, int], ...], concat: tuple[int, ...], title: str) -> None:
    from matplotlib.patches import FancyArrowPatch

    steps = len(edges) // 2
    pos = _positions(steps)
    names = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}
    for node, (x, y) in pos.items():
        label = names.get(node, str(node - 2) if isinstance(node, int) else node)
        colour = "#dddddd" if node in (0, 1, "out") else "#ffffcc"
        ax.text(x, y, f"${label}$" if node in names else label, ha="center", va="center", fontsize=10, zorder=3,
                bbox={"boxstyle": "round,pad=0.35", "facecolor": colour, "edgecolor": "black"})

    def arrow(src, dst, colour, label=None, rad=0.0):
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, color=colour,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=14, shrinkB=14, lw=1.6, zorder=1))
        if label:  # on the arc (matplotlib's arc3 control point), nearer the target than the source
            cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
            t = 0.62
            lx = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t ** 2 * x1
            ly = (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t ** 2 * y1
            ax.text(lx, ly, label, fontsize=7, color=colour, ha="center", va="center", zorder=2,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3, "alpha": 0.85})

    for position, (op, source) in enumerate(edges):
        target = position // 2 + 2
        rad = 0.12 if position % 2 == 0 else -0.12
        arrow(source, target, _COLOURS.get(op, "black"), op, rad)
    for node in concat:
        arrow(node, "out", "#888888")
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.6, 1.5 + 1.3 * steps + 0.6)
    ax.set_ylim(-2.0, 2.0)
    ax.axis("off")


def draw_genotypes(items: list[tuple[str, Genotype | str]], path: str | Path) -> Path:
    """One row per ``(title, genotype)``: the normal and the reduction cell side by side (PNG, SVG, PDF...).

    A genotype may be a :class:`Genotype`, a published name or a genotype string.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(items), 2, figsize=(15, 4.4 * len(items)), squeeze=False)
    for row, (title, genotype) in zip(axes, items):
        if isinstance(genotype, str):
            genotype = resolve_genotype(genotype)[1]
        prefix = f"{title}: " if title else ""
        _draw_cell(row[0], genotype.normal, genotype.normal_concat,
                   f"{prefix}normal cell ({genotype.num_skip_connects('normal')} skip connections)")
        _draw_cell(row[1], genotype.reduce, genotype.reduce_concat,
                   f"{prefix}reduction cell ({genotype.num_skip_connects('reduce')} skip connections)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_genotype(genotype: Genotype | str, path: str | Path, title: str | None = None) -> Path:
    """The normal and the reduction cell of one genotype, side by side."""
    return draw_genotypes([(title or "", genotype)], path)


def draw_runs(runs_dir: str | Path, path: str | Path) -> Path:
    """Every finished NAS run's cell under ``runs_dir`` (a sweep folder), one row each, by norm label."""
    items = []
    for record_path in sorted(Path(runs_dir).rglob("result.json")):
        record = json.loads(record_path.read_text())
        if record.get("task") == "nas" and record.get("status") == "finished" and record.get("genotype"):
            where = ", ".join(f"{k}={v}" for k, v in record.get("coordinates", {}).items())
            items.append((f"{record['norm_label']} ({where}, bs={record['batch_size']})", record["genotype"]))
    if not items:
        raise FileNotFoundError(f"no finished NAS run records under {runs_dir}")
    return draw_genotypes(items, path)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == "--runs":
        print(draw_runs(args[1], args[2]))
        return 0
    if len(args) not in (2, 3):
        print("usage: python -m tasks.nas.draw GENOTYPE OUT.png [TITLE]\n"
              "       python -m tasks.nas.draw --runs RUNS_DIR OUT.png", file=sys.stderr)
        return 2
    print(draw_genotype(args[0], args[1], args[2] if len(args) == 3 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
