"""Office-31 and Office-Home: one image folder per domain, one sub-folder per class.

Accepted layouts under the data root (the first that exists wins):

- Office-31: ``office31/<domain>/images/<class>/*.jpg`` (the original release) or
  ``office31/<domain>/<class>/*.jpg``; domains ``amazon``, ``dslr``, ``webcam``.
- Office-Home: ``office_home/<Domain>/<class>/*.jpg`` or the release folder
  ``OfficeHomeDataset_10072016/<Domain>/<class>/*.jpg``; domains ``Art``, ``Clipart``,
  ``Product`` and ``Real World`` (also ``Real_World`` or in lower case).

Labels are the positions of the folder names in the domain's declared class list
(:mod:`tasks.uda.domains`), not the order a listing happens to give, so every
domain of a benchmark numbers its classes alike; a folder that is not a declared
class is an error. The benchmarks have no train/test split: the whole domain is
the unlabelled target training set and the target test set, as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from ..data.errors import DataCorruptError, DataMissingError
from .domains import Domain

__all__ = ["ImageList", "domain_dir", "list_images", "office_transform", "MEAN", "STD"]

MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, as for a (pre)trained ResNet-50
STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_FOLDER_NAMES = {
    "amazon": ("amazon",), "dslr": ("dslr",), "webcam": ("webcam",),
    "art": ("Art", "art"), "clipart": ("Clipart", "clipart"), "product": ("Product", "product"),
    "real_world": ("Real World", "Real_World", "RealWorld", "real_world"),
}
_BENCHMARK_DIRS = {"office31": ("office31", "Office31", "office"), "office_home": ("office_home", "OfficeHome",
                                                                                  "OfficeHomeDataset_10072016")}
HOW_TO_GET = {
    "office31": "extract Office-31 (domain_adaptation_images.tar.gz) so that <data root>/office31/amazon/images/"
                "<class>/ exists, likewise dslr and webcam",
    "office_home": "extract Office-Home (OfficeHomeDataset_10072016.zip) into <data root>, or rename its folder to "
                   "<data root>/office_home, so that Art/, Clipart/, Product/ and Real World/ hold one folder per class",
}


def domain_dir(domain: Domain, root: Path) -> Path:
    """The folder whose sub-folders are ``domain``'s classes; DataMissingError naming every place looked."""
    looked = []
    for bench in _BENCHMARK_DIRS[domain.benchmark]:
        for name in _FOLDER_NAMES[domain.name]:
            for candidate in (root / bench / name / "images", root / bench / name):
                looked.append(candidate)
                if candidate.is_dir() and any(p.is_dir() for p in candidate.iterdir()):
                    return candidate
    raise DataMissingError(
        f"{domain.name} ({domain.benchmark}) not found: looked in {', '.join(str(p) for p in looked[:4])} and "
        f"{len(looked) - 4} more. To get it, {HOW_TO_GET[domain.benchmark]}, and pass --data.root or set $NORMBENCH_DATA"
    )


def list_images(domain: Domain, root: Path) -> list[tuple[Path, int]]:
    """(image path, label) for every image of the domain, sorted by path."""
    folder = domain_dir(domain, root)
    index = {name: i for i, name in enumerate(domain.classes)}
    samples = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_dir.name not in index:
            raise DataCorruptError(f"{class_dir}: {class_dir.name!r} is not one of the {domain.num_classes} "
                                   f"{domain.benchmark} classes (e.g. {', '.join(domain.classes[:3])})")
        label = index[class_dir.name]
        samples += [(p, label) for p in sorted(class_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not samples:
        raise DataMissingError(f"{folder} has class folders but no images in them")
    return samples


def office_transform(train: bool, image_size: int = 224) -> Callable:
    """Resize to 256/224 of the input, then a random resized crop and flip (training) or a centre crop."""
    from torchvision import transforms as T

    resize = int(round(image_size * 256 / 224))
    if train:
        ops = [T.Resize(resize), T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        ops = [T.Resize(resize), T.CenterCrop(image_size)]
    return T.Compose(ops + [T.ToTensor(), T.Normalize(MEAN, STD)])


class ImageList(Dataset):
    """Images decoded per sample with ``transform``; with ``labelled=False`` it returns images only."""

    def __init__(self, samples: list[tuple[Path, int]], transform: Callable, labelled: bool = True) -> None:
        self.samples = samples
        self.transform = transform
        self.labelled = labelled

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                image = self.transform(img.convert("RGB"))
        except OSError as exc:
            raise DataCorruptError(f"{path}: not a readable image ({exc})") from None
        return (image, torch.tensor(label)) if self.labelled else image

    def subset(self, indices: list[int], labelled: bool | None = None, transform: Callable | None = None) -> "ImageList":
        keep = [self.samples[i] for i in indices]
        return ImageList(keep, transform or self.transform, self.labelled if labelled is None else labelled)
