"""Example grids: what the two domains look like, for the README and beside every run's record.

    python -m tasks.uda.examples docs/figures/uda_fashion_mnist_m.png

writes one column per Fashion-MNIST class (T-shirt/top ... ankle boot), each
Fashion-MNIST test image above the Fashion-MNIST-M image built from it,
``--per-class`` pairs per class. Runs
on small-image domains write ``domains.png`` into their run directory: the first
training images of the labelled and the unlabelled side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["image_grid", "write_run_examples", "fashion_pair_grid", "main"]


def image_grid(rows: list[torch.Tensor], scale: int = 2, gap: int = 2) -> "Any":
    """A PIL image of uint8 (N, C, H, W) rows (grey replicated to RGB), ``scale`` x enlarged, white gaps."""
    from PIL import Image

    height, width = rows[0].shape[-2:]
    columns = max(len(r) for r in rows)
    canvas = np.full(((height + gap) * len(rows) + gap, (width + gap) * columns + gap, 3), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            array = image.expand(3, -1, -1).permute(1, 2, 0).numpy()
            top, left = gap + i * (height + gap), gap + j * (width + gap)
            canvas[top:top + height, left:left + width] = array
    picture = Image.fromarray(canvas)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def write_run_examples(datamodule: Any, path: Path, count: int = 12) -> None:
    """``domains.png``: the first ``count`` labelled and unlabelled training images (small-image domains only)."""
    if path.exists():
        return
    rows = []
    for name in ("labelled_train", "unlabelled_train"):
        images = getattr(datamodule.sets.get(name), "images", None)
        if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
            rows.append(images[:count])
    if rows and len({r.shape[-1] for r in rows}) == 1:
        image_grid(rows).save(path)


def fashion_pair_grid(per_class: int = 4, root: Path | None = None, cache_dir: Path | None = None) -> "Any":
    """Fashion-MNIST test images and their Fashion-MNIST-M versions, ``per_class`` of each class."""
    from ..data.fashion_mnist import load_fashion_mnist
    from .fashion_mnist_m import load_fashion_mnist_m
    from .loading import fashion_mnist_m_cache

    grey, labels = load_fashion_mnist(root, "test")
    colour, _, _ = load_fashion_mnist_m(root, cache_dir or fashion_mnist_m_cache(None, None), "test")
    by_class = [torch.nonzero(labels == c).flatten()[:per_class] for c in range(10)]
    rows = []
    for k in range(per_class):  # one column per class; each grey row above its colour version
        picks = torch.stack([indices[k] for indices in by_class])
        rows += [grey[picks], colour[picks]]
    return image_grid(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.uda.examples", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=None, help="Fashion-MNIST-M cache (default as for runs)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fashion_pair_grid(args.per_class, cache_dir=args.cache_dir).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
