"""The domains a run can adapt between, what each declares, and which pairs make sense.

A domain declares its class names; two domains form a pair only when those
names are the same, in the same order (the label index means the same class on
both sides). Counting classes is not enough: Fashion-MNIST and MNIST both have
ten, and a "T-shirt" is not a "0". Each domain belongs to a benchmark, which is
the ``dataset`` of a run record, so every pair of one benchmark lands in one
table with an average column.

This module imports nothing heavy: ``validate`` runs it for every grid point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..data.fashion_mnist import CLASSES as FASHION_CLASSES
from ..runner.checks import suggest
from ..runner.errors import ConfigError

__all__ = ["Domain", "DOMAINS", "BENCHMARKS", "get_domain", "check_pair", "pair_dataset", "pair_label", "pair_order"]

DIGITS = tuple(str(d) for d in range(10))

OFFICE31_CLASSES = (
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray", "mobile_phone",
    "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector", "punchers", "ring_binder",
    "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
)
OFFICE_HOME_CLASSES = (
    "Alarm_Clock", "Backpack", "Batteries", "Bed", "Bike", "Bottle", "Bucket", "Calculator", "Calendar", "Candles",
    "Chair", "Clipboards", "Computer", "Couch", "Curtains", "Desk_Lamp", "Drill", "Eraser", "Exit_Sign", "Fan",
    "File_Cabinet", "Flipflops", "Flowers", "Folder", "Fork", "Glasses", "Hammer", "Helmet", "Kettle", "Keyboard",
    "Knives", "Lamp_Shade", "Laptop", "Marker", "Monitor", "Mop", "Mouse", "Mug", "Notebook", "Oven", "Pan",
    "Paper_Clip", "Pen", "Pencil", "Postit_Notes", "Printer", "Push_Pin", "Radio", "Refrigerator", "Ruler",
    "Scissors", "Screwdriver", "Shelf", "Sink", "Sneakers", "Soda", "Speaker", "Spoon", "TV", "Table", "Telephone",
    "ToothBrush", "Toys", "Trash_Can", "Webcam",
)


@dataclass(frozen=True)
class Domain:
    """One domain: its name on the command line, its benchmark, its classes and its native image format.

    Attributes:
        name: the value of ``data.source`` / ``data.target``.
        benchmark: the record's ``dataset`` for every pair of this benchmark.
        label: short name for table columns ("F-MNIST-M", "A").
        classes: declared class names, in label order.
        channels: native channels (1: grey, replicated when the pair has a colour domain).
        image_size: native side length in pixels (folder domains: the network input size).
        kind: ``tensor`` (the whole split in memory as uint8) or ``folder`` (decoded per image).
        embedded: available without a data root.
    """

    name: str
    benchmark: str
    label: str
    classes: tuple[str, ...]
    channels: int
    image_size: int
    kind: Literal["tensor", "folder"] = "tensor"
    embedded: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _office(name: str, benchmark: str, label: str, classes: tuple[str, ...]) -> Domain:
    return Domain(name, benchmark, label, classes, 3, 224, "folder")


_ALL = (
    Domain("fashion_mnist", "fmnist_fmnistm", "F-MNIST", FASHION_CLASSES, 1, 28, embedded=True),
    Domain("fashion_mnist_m", "fmnist_fmnistm", "F-MNIST-M", FASHION_CLASSES, 3, 28, embedded=True),
    Domain("mnist", "digits", "MNIST", DIGITS, 1, 28),
    Domain("mnist_m", "digits", "MNIST-M", DIGITS, 3, 28),
    Domain("usps", "digits", "USPS", DIGITS, 1, 16),
    Domain("svhn", "digits", "SVHN", DIGITS, 3, 32),
    _office("amazon", "office31", "A", OFFICE31_CLASSES),
    _office("dslr", "office31", "D", OFFICE31_CLASSES),
    _office("webcam", "office31", "W", OFFICE31_CLASSES),
    _office("art", "office_home", "Ar", OFFICE_HOME_CLASSES),
    _office("clipart", "office_home", "Cl", OFFICE_HOME_CLASSES),
    _office("product", "office_home", "Pr", OFFICE_HOME_CLASSES),
    _office("real_world", "office_home", "Rw", OFFICE_HOME_CLASSES),
)
DOMAINS: dict[str, Domain] = {d.name: d for d in _ALL}
BENCHMARKS: dict[str, tuple[str, ...]] = {}
for _d in _ALL:
    BENCHMARKS.setdefault(_d.benchmark, ())
    BENCHMARKS[_d.benchmark] += (_d.name,)


def get_domain(name: str, key: str = "data.source") -> Domain:
    """The domain called ``name``; ConfigError naming ``key`` and the choices otherwise."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise ConfigError(f"{key}: unknown domain {name!r}{suggest(name, DOMAINS)}; available: "
                          f"{', '.join(DOMAINS)}") from None


def check_pair(source: Domain, target: Domain) -> None:
    """Refuse a pair that is one domain twice or whose label spaces differ (by declared class names)."""
    if source.name == target.name:
        raise ConfigError(f"data.source and data.target are both {source.name!r}: adaptation needs two domains")
    if source.classes == target.classes:
        return
    if set(source.classes) == set(target.classes):
        detail = "the same class names in another order"
    else:
        only_source = [c for c in source.classes if c not in target.classes][:3]
        only_target = [c for c in target.classes if c not in source.classes][:3]
        detail = (f"{source.name} has {', '.join(map(repr, only_source))}... that {target.name} lacks, "
                  f"{target.name} has {', '.join(map(repr, only_target))}...")
    raise ConfigError(
        f"data.source={source.name} and data.target={target.name} have different label spaces "
        f"({source.num_classes} and {target.num_classes} classes; {detail}); pairs need the same declared class "
        f"names. Pairs within one benchmark: " + "; ".join(f"{b}: {', '.join(n)}" for b, n in BENCHMARKS.items())
    )


def pair_dataset(source: Domain, target: Domain) -> str:
    """The record's ``dataset``: the benchmark both domains belong to (the same for every pair of it)."""
    if source.benchmark == target.benchmark:
        return source.benchmark
    return f"{source.benchmark}+{target.benchmark}"


def pair_label(source: Domain, target: Domain) -> str:
    return f"{source.label}→{target.label}"


def pair_order(source: Domain, target: Domain) -> float:
    """Column order: by source, then target, in the benchmark's listing order."""
    names = list(DOMAINS)
    return float(names.index(source.name) * 100 + names.index(target.name))
