"""ImageNet (or any data set) in ImageFolder layout: ``<root>/imagenet/{train,val}/<class>/<image>``.

Images are decoded per sample here (there is no way around it at this scale);
use data.num_workers to parallelize. ``val/`` serves as the test set, as usual
for ImageNet, and validation images are held out from ``train/``.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from .errors import DataMissingError

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


def imagenet_folder(root: Path, split: str, train_transform: bool, image_size: int = 224) -> Dataset:
    from torchvision.datasets import ImageFolder

    folder = imagenet_dir(root) / ("val" if split == "test" else "train")
    dataset = ImageFolder(str(folder), transform=imagenet_transforms(train_transform, image_size))
    if len(dataset.classes) == 0 or len(dataset) == 0:
        raise DataMissingError(f"ImageNet folder {folder} has no class folders with images")
    return dataset
