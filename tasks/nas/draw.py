"""Pictures of a genotype's two cells, drawn with matplotlib (graphviz is not needed).

Each cell is a left-to-right graph: the two inputs c_{k-2} and c_{k-1}, the
intermediate nodes, and the output c_k, which concatenates the nodes the
genotype lists. Edges are coloured by op family (skip connections stand out,
since their number is what skip-connect collapse is about) and labelled with
the op.

    python -m tasks.nas.draw "DARTS_V2" cells.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from .genotypes import Genotype, resolve_genotype

__all__ = ["draw_genotype", "GENOTYPE_FIGURE"]

GENOTYPE_FIGURE = "genotype.png"
_COLOURS = {"skip_connect": "#d62728", "max_pool_3x3": "#1f77b4", "avg_pool_3x3": "#17becf",
            "sep_conv_3x3": "#2ca02c", "sep_conv_5x5": "#98df8a", "dil_conv_3x3": "#9467bd", "dil_conv_5x5": "#c5b0d5"}


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


def draw_genotype(genotype: Genotype | str, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG (or any format matplotlib knows from the suffix) of the normal and the reduction cell.

    ``genotype`` is a :class:`Genotype`, a published name or a genotype string.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if isinstance(genotype, str):
        genotype = resolve_genotype(genotype)[1]
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.4))
    _draw_cell(axes[0], genotype.normal, genotype.normal_concat,
               f"normal cell ({genotype.num_skip_connects('normal')} skip connections)")
    _draw_cell(axes[1], genotype.reduce, genotype.reduce_concat,
               f"reduction cell ({genotype.num_skip_connects('reduce')} skip connections)")
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print("usage: python -m tasks.nas.draw GENOTYPE OUT.png [TITLE]", file=sys.stderr)
        return 2
    print(draw_genotype(args[0], args[1], args[2] if len(args) == 3 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
