"""Tasks are registered by name and imported when asked for; a missing dependency fails that task only."""

from __future__ import annotations

import sys

import pytest

from tasks import registry
from tasks.cli import main
from tasks.registry import TaskUnavailableError, UnknownTaskError, get_task, list_tasks, register_task


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LOADED", dict(registry._LOADED))


def test_builtin_tasks_are_listed_in_the_papers_order() -> None:
    names = list_tasks()
    assert names[0] == "classification"
    order = [t for t in ("classification", "nas", "adversarial", "fewshot", "uda") if t in names]
    assert [n for n in names if n in order] == order


def test_a_task_whose_dependency_is_missing_fails_alone_and_says_what_to_install(scratch_registry, capsys) -> None:
    register_task("needs_missing", "no_such_module_for_normbench:TASK",
                  requires={"no_such_module_for_normbench": "pip install no-such-package==1.0"})
    assert "needs_missing" in list_tasks()
    with pytest.raises(TaskUnavailableError, match=r"pip install no-such-package==1.0"):
        get_task("needs_missing")
    assert get_task("classification").name == "classification"  # the others keep working
    assert main(["run", "needs_missing"]) == 2
    assert "needs packages that are not installed: no_such_module_for_normbench" in capsys.readouterr().err


def test_registration_imports_nothing_until_asked(scratch_registry) -> None:
    register_task("lazy", "tests_lazy_task_module:TASK")
    assert "tests_lazy_task_module" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        get_task("lazy")


def test_unknown_task_names_the_nearest_one() -> None:
    with pytest.raises(UnknownTaskError, match=r"unknown task 'clasification' \(did you mean 'classification'\?\)"):
        get_task("clasification")


def test_a_name_cannot_be_taken_twice(scratch_registry) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_task("classification", "somewhere.else:TASK")
