"""The tasks normbench can run, registered by name and imported only when asked for.

A task package's ``__init__`` registers the task with :func:`register_task`,
naming where its implementation lives and which optional packages it needs;
nothing heavy is imported then. :func:`get_task` imports the implementation
the first time the task is asked for, so a task whose dependency is missing
fails only then, with a message that says what to install, and every other
task keeps working. Tasks from other packages register through the
``normbench.tasks`` entry-point group (each entry point names a module whose
import calls :func:`register_task`).

    register_task("adversarial", "tasks.adversarial.task:ADVERSARIAL",
                  description="...", requires={"torchattacks": "pip install --no-deps torchattacks==3.5.1"})
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING

from normbench.naming import PAPER_TASK_ORDER

from .runner.checks import suggest

if TYPE_CHECKING:
    from .runner.task import Task

__all__ = ["register_task", "list_tasks", "get_task", "task_description", "UnknownTaskError", "TaskUnavailableError"]

# Packages whose import registers the built-in tasks, in the paper's order (the order of listings).
BUILTIN_LOCATIONS = tuple(f"tasks.{name}" for name in PAPER_TASK_ORDER)
ENTRY_POINT_GROUP = "normbench.tasks"


class UnknownTaskError(ValueError):
    pass


class TaskUnavailableError(UnknownTaskError):
    """A registered task whose optional dependency is not installed."""


@dataclass(frozen=True)
class TaskRegistration:
    name: str
    target: str  # "package.module:ATTRIBUTE", a Task instance
    description: str = ""
    requires: dict[str, str] = field(default_factory=dict)  # importable module -> how to install it


_REGISTRY: dict[str, TaskRegistration] = {}
_LOADED: dict[str, "Task"] = {}
_discovered = False


def register_task(name: str, target: str, *, description: str = "", requires: dict[str, str] | None = None,
                  replace: bool = False) -> None:
    """Register task ``name`` implemented by ``target`` (``module:attribute``), imported on first use."""
    if ":" not in target:
        raise ValueError(f"task target {target!r} must look like 'package.module:ATTRIBUTE'")
    if name in _REGISTRY and not replace and _REGISTRY[name].target != target:
        raise ValueError(f"a task named {name!r} is registered already ({_REGISTRY[name].target})")
    _REGISTRY[name] = TaskRegistration(name, target, description, dict(requires or {}))
    _LOADED.pop(name, None)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for location in BUILTIN_LOCATIONS:
        try:
            importlib.import_module(location)
        except ModuleNotFoundError as exc:
            if exc.name != location:  # the package exists but its light __init__ is broken: say so
                raise
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry.load()


def list_tasks() -> list[str]:
    """Registered task names (built-in ones in the paper's order, then others in registration order)."""
    _discover()
    builtin = [name for name in PAPER_TASK_ORDER if name in _REGISTRY]  # whatever order they were imported in
    return builtin + [name for name in _REGISTRY if name not in PAPER_TASK_ORDER]


def task_description(name: str) -> str:
    _discover()
    return _REGISTRY[name].description if name in _REGISTRY else ""


def _missing_requirements(reg: TaskRegistration) -> list[str]:
    missing = []
    for module, hint in reg.requires.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(f"{module} ({hint})")
    return missing


def get_task(name: str) -> "Task":
    """The task registered as ``name``, imported now if it was not before."""
    _discover()
    if name in _LOADED:
        return _LOADED[name]
    reg = _REGISTRY.get(name)
    if reg is None:
        raise UnknownTaskError(f"unknown task {name!r}{suggest(name, _REGISTRY)}; available: {', '.join(_REGISTRY)}")
    missing = _missing_requirements(reg)
    if missing:
        raise TaskUnavailableError(f"task {name!r} needs packages that are not installed: {'; '.join(missing)}")
    module_name, _, attribute = reg.target.partition(":")
    task = getattr(importlib.import_module(module_name), attribute)
    _LOADED[name] = task
    return task
