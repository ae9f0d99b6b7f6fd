"""Per-episode accuracy files beside few-shot records, read for paired comparisons.

A few-shot run meta-tests on fixed episodes (drawn from the data seed, not the
run seed) and writes one row per episode next to its record; the record names
the file in ``episode_file``. Format (the few-shot task's ``test_episodes.csv``)::

    set,episode,accuracy,episodes_sha256
    test,0,0.8,e4e65dd4...
    test,1,0.4,e4e65dd4...

``set`` is the episode set (``test``, or a cross-domain set such as ``digits``)
and ``episodes_sha256`` fingerprints the episodes themselves, so two runs'
rows pair up only when their hashes and episode numbers agree. Which set
belongs to which metric is not guessed from names: it is the set whose mean
accuracy reproduces the metric's value in the record (a check, too, that the
file belongs to the run). Nothing here raises on a bad file: the reason comes
back as a note and the comparison falls back to seed level.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .record import RunRecord

EPISODE_FILE_KEY = "episode_file"
_COLUMNS = ("set", "episode", "accuracy", "episodes_sha256")
# The record keeps the mean as logged (possibly float32): a set matches a metric within this.
MEAN_TOLERANCE = 1e-6


@dataclass(frozen=True)
class EpisodeSet:
    """The accuracies of one run on one episode set, in episode order."""

    path: Path
    name: str
    sha256: str
    episodes: tuple[int, ...]
    accuracies: np.ndarray = field(compare=False, repr=False)

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())


class EpisodeFileError(ValueError):
    """An episode file that cannot be used; the message names the file and the problem."""


@functools.lru_cache(maxsize=256)
def read_episode_file(path: Path) -> dict[str, EpisodeSet]:
    """Every set of one file, by set name. Raises EpisodeFileError naming the file."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != _COLUMNS:
                raise EpisodeFileError(f"{path}: expected the columns {', '.join(_COLUMNS)}, got "
                                       f"{', '.join(reader.fieldnames or ()) or 'none'}")
            rows = list(reader)
    except OSError as exc:
        raise EpisodeFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    grouped: dict[str, list[tuple[int, float, str]]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            episode, accuracy = int(row["episode"]), float(row["accuracy"])
        except (TypeError, ValueError):
            raise EpisodeFileError(f"{path}: line {line}: episode and accuracy must be numbers") from None
        if not math.isfinite(accuracy):
            raise EpisodeFileError(f"{path}: line {line}: accuracy {row['accuracy']!r} is not finite")
        grouped.setdefault(row["set"], []).append((episode, accuracy, row["episodes_sha256"]))
    sets = {}
    for name, entries in grouped.items():
        entries.sort()
        hashes = {h for _, _, h in entries}
        episodes = tuple(e for e, _, _ in entries)
        if len(hashes) != 1:
            raise EpisodeFileError(f"{path}: set {name!r} mixes {len(hashes)} episode hashes")
        if len(set(episodes)) != len(episodes):
            raise EpisodeFileError(f"{path}: set {name!r} lists an episode twice")
        sets[name] = EpisodeSet(path, name, hashes.pop(), episodes, np.array([a for _, a, _ in entries]))
    return sets


def episodes_of(record: RunRecord, metric: str) -> tuple[EpisodeSet | None, str | None]:
    """The episode set behind `metric` of a finished record, or (None, why not).

    (None, None) when the record names no episode file: nothing to pair, nothing wrong.
    """
    name = record.raw.get(EPISODE_FILE_KEY)
    if name is None or metric not in record.metrics:
        return None, None
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return None, f"{record.path}: key {EPISODE_FILE_KEY!r} must name a file in the run folder, got {name!r}"
    try:
        sets = read_episode_file(record.path.parent / name)
    except EpisodeFileError as exc:
        return None, str(exc)
    value = record.metrics[metric]
    matches = [s for s in sets.values() if abs(s.mean - value) <= MEAN_TOLERANCE]
    if len(matches) != 1:
        found = "no set" if not matches else f"{len(matches)} sets ({', '.join(s.name for s in matches)})"
        return None, (f"{record.path.parent / name}: {found} reproduces {metric}={value!r} of the record "
                      "(the set's mean accuracy must equal it); not paired by episode")
    episode_set = matches[0]
    declared = record.raw.get(f"{episode_set.name}_episodes_sha256")
    if declared is not None and declared != episode_set.sha256:
        return None, (f"{episode_set.path}: set {episode_set.name!r} has episode hash {episode_set.sha256[:12]}..., "
                      f"the record says {str(declared)[:12]}...; not paired by episode")
    return episode_set, None


def pairing_problem(a: EpisodeSet, b: EpisodeSet) -> str | None:
    """Why two runs' episode sets cannot be paired episode by episode, or None."""
    if a.sha256 != b.sha256:
        return (f"{a.path} and {b.path}: different test episodes (hash {a.sha256[:12]}... vs {b.sha256[:12]}...); "
                "not paired by episode")
    if a.episodes != b.episodes:
        return f"{a.path} and {b.path}: the same episode hash but other episode numbers; not paired by episode"
    return None
