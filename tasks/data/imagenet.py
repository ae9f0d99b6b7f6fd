"""ImageNet (or any data set) in ImageFolder layout: ``<root>/imagenet/{train,val}/<class>/<image>``.

Images are decoded per sample here (there is no way around it at this scale);
use data.num_workers to parallelize. ``val/`` serves as the test set, as usual
for ImageNet, and validation images are held out from ``train/``.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from .errors import DataCorruptError, DataMissingError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def imagenet_dir(root: Path) -> Path:
    """Accept both ``<root>/imagenet`` and a root that is itself the ImageNet folder."""
    for candidate in (root / "imagenet", root):
        if (candidate / "train").is_dir() and (candidate / "val").is_dir():
            return candidate
    raise DataMissingError(
        f"ImageNet not found: looked for train/ and val/ in {root / 'imagenet'} and {root}. Prepare it in "
        "ImageFolder layout (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG; the validation images sorted into class "
        "folders) and pass --data.root or set NORMBENCH_DATA"
    )


def imagenet_transforms(train: bool, image_size: int = 224):
    from torchvision import transforms as T

    if train:
        ops = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        ops = [T.Resize(int(round(image_size * 256 / 224))), T.CenterCrop(image_size)]
    return T.Compose(ops + [T.ToTensor(), T.Normalize(MEAN, STD)])


def _train_classes(root: Path) -> tuple[list[str], dict[str, int]]:
    train = imagenet_dir(root) / "train"
    classes = sorted(entry.name for entry in train.iterdir() if entry.is_dir())
    if not classes:
        raise DataMissingError(f"ImageNet folder {train} has no class folders")
    return classes, {name: i for i, name in enumerate(classes)}


def imagenet_folder(root: Path, split: str, train_transform: bool, image_size: int = 224) -> Dataset:
    """ImageFolder over train/ or (split="test") val/, labelled with train/'s class indices.

    ImageFolder numbers the classes of each folder on its own, so a val/ that
    lacks a class would shift every later label; both splits use train/'s list.
    """
    from torchvision.datasets import ImageFolder

    classes, class_to_idx = _train_classes(root)
    folder = imagenet_dir(root) / ("val" if split == "test" else "train")
    extra = sorted(e.name for e in folder.iterdir() if e.is_dir() and e.name not in class_to_idx)
    if extra:
        raise DataCorruptError(f"{folder} has class folders that train/ lacks: {', '.join(extra[:5])}")

    class _Folder(ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            present = {e.name for e in Path(directory).iterdir() if e.is_dir()}
            return [c for c in classes if c in present], {c: i for c, i in class_to_idx.items() if c in present}

    dataset = _Folder(str(folder), transform=imagenet_transforms(train_transform, image_size))
    if len(dataset) == 0:
        raise DataMissingError(f"ImageNet folder {folder} has no images in its class folders")
    return dataset
