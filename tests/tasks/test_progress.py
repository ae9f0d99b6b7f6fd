"""The sweep's progress line: counts, failures and an ETA from the runs done so far, as plain lines."""

from __future__ import annotations

from tasks.sweep.progress import SweepProgress, format_duration


def test_progress_lines_count_failures_and_estimate_the_rest() -> None:
    lines: list[str] = []
    now = [100.0]
    progress = SweepProgress(4, lines.append, clock=lambda: now[0])
    now[0] += 30
    progress.finished("run-a", "finished", seconds=30)
    now[0] += 30
    progress.finished("run-b", "failed", "RuntimeError: boom", seconds=29.6)
    now[0] += 60
    progress.finished("run-c", "finished", seconds=60)
    now[0] += 20
    progress.finished("run-d", "diverged", "loss became nan", seconds=20)
    assert lines == [
        "[1/4] run-a -> finished (30s) | ETA 1m30s",  # 30 s per run so far, 3 runs left
        "[2/4] run-b -> failed: RuntimeError: boom (30s) | 1 failed so far | ETA 1m00s",
        "[3/4] run-c -> finished (1m00s) | 1 failed so far | ETA 40s",
        "[4/4] run-d -> diverged: loss became nan (20s) | 2 failed so far | all done in 2m20s",
    ]
    assert all("\r" not in line for line in lines)  # readable in a log file


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 3600, 7322)] == ["0s", "59s", "1m01s", "59m59s", "1h00m", "2h02m"]
