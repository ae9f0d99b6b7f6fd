"""One line per finished run: how far the sweep is, what failed, and when it should end.

Plain lines (no carriage returns or cursor tricks), flushed as they are written,
so the output reads the same in a terminal, a log file or a SLURM ``.out`` file.
The estimate is the elapsed time per finished run times the runs left, which
already accounts for runs going on in parallel.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["SweepProgress", "format_duration"]

FAILED = ("failed", "diverged", "refused")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class SweepProgress:
    """Counts finished runs and prints ``[done/total] run -> status (time) | failures | ETA``."""

    def __init__(self, total: int, emit: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.emit = emit
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.failures = 0

    def finished(self, name: str, status: str, message: str = "", seconds: float | None = None) -> str:
        self.done += 1
        self.failures += status in FAILED
        now = self.clock()
        left = self.total - self.done
        parts = [f"[{self.done}/{self.total}] {name} -> {status}" + (f": {message}" if message else "")]
        if seconds is not None:
            parts[0] += f" ({format_duration(seconds)})"
        if self.failures:
            parts.append(f"{self.failures} failed so far")
        if left:
            parts.append(f"ETA {format_duration((now - self.start) / self.done * left)}")
        else:
            parts.append(f"all done in {format_duration(now - self.start)}")
        line = " | ".join(parts)
        self.emit(line)
        return line
