"""Names both sides agree on: file-safe names and the paper's order of the five tasks."""

from __future__ import annotations

import re

__all__ = ["file_safe", "PAPER_TASK_ORDER", "task_rank"]

# The order of the BGN paper's experiments; tasks it does not name follow alphabetically.
PAPER_TASK_ORDER = ("classification", "nas", "adversarial", "fewshot", "uda")


def file_safe(text: str, replacement: str = "_", keep: str = "=.+-") -> str:
    """``text`` with every run of characters other than letters, digits and ``keep`` replaced.

    >>> file_safe("bgn:num_groups=2")
    'bgn_num_groups=2'
    """
    allowed = re.escape(keep)
    return re.sub(rf"[^A-Za-z0-9{allowed}]+", replacement, text).strip(replacement)


def task_rank(task: str) -> tuple[int, str]:
    """Sort key: the paper's tasks in its order, then the others by name."""
    return (PAPER_TASK_ORDER.index(task) if task in PAPER_TASK_ORDER else len(PAPER_TASK_ORDER), task)
