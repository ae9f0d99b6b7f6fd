"""Neural architecture search: DARTS search, derive and retrain, with the norm under test in both networks."""

from ..registry import register_task

register_task(
    "nas",
    "tasks.nas.task:NAS",
    description="DARTS: search a cell with the norm under test (first or second order), derive it, retrain it.",
)
