"""The tasks normbench can run, by name."""

from __future__ import annotations

from .runner.task import TaskDefinition


class UnknownTaskError(ValueError):
    pass


def _load() -> dict[str, TaskDefinition]:
    from .classification.task import CLASSIFICATION

    return {t.name: t for t in (CLASSIFICATION,)}


def list_tasks() -> list[str]:
    return list(_load())


def get_task(name: str) -> TaskDefinition:
    tasks = _load()
    try:
        return tasks[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; available: {', '.join(tasks)}") from None
