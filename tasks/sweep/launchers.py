"""Launchers: run the planned runs here (sequentially or N processes at once) or on SLURM.

Whatever the launcher, a run's outcome is read back from its record, so the
summary is the same whether a run executed in this process, in a child process
or in a SLURM job. A run that fails does not stop the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import ConfigError
from ..registry import get_task
from ..runner.record import read_record
from .expand import PlannedRun

__all__ = ["RunResult", "LocalLauncher", "SubmititLauncher", "run_in_job"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    run: PlannedRun
    status: str  # finished, diverged, failed, skipped
    message: str = ""


def _result_from_disk(run: PlannedRun, fallback: str) -> RunResult:
    record = read_record(run.run_dir)
    if record is None:
        return RunResult(run, "failed", fallback or "no record was written")
    return RunResult(run, str(record.get("status")), str(record.get("error") or ""))


def run_in_job(task_name: str, argv: list[str]) -> tuple[str, str]:
    """Execute one run in the current process (used in-process and inside SLURM jobs)."""
    from ..logging_setup import loggers_factory
    from ..run_command import parse_config
    from ..runner.run import execute

    task = get_task(task_name)
    try:
        outcome = execute(parse_config(task, argv, raise_errors=True), task, loggers_factory=loggers_factory)
    except ConfigError as exc:
        return "failed", f"invalid configuration: {exc}"
    return outcome.status, outcome.message


class LocalLauncher:
    """Runs on this machine: in this process one after another, or ``parallel`` child processes.

    Multi-device runs always get their own process (Lightning's DDP launcher
    re-executes the command). With several processes at once, each gets
    ``threads_per_run`` torch threads (default: the cores divided among them).
    """

    def __init__(self, parallel: int = 1, threads_per_run: int = 0, log_dir: Path | None = None) -> None:
        self.parallel = max(1, parallel)
        cores = os.cpu_count() or 1
        self.threads = threads_per_run or (max(1, cores // self.parallel) if self.parallel > 1 else 0)
        self.log_dir = log_dir

    def launch(self, runs: list[PlannedRun], progress: Progress = print) -> list[RunResult]:
        if self.parallel == 1:
            results = []
            for i, run in enumerate(runs, 1):
                progress(f"[{i}/{len(runs)}] {run.state:6} {run.run_dir.name}")
                if run.world_size > 1:
                    results += self._processes([run], progress)
                else:
                    status, message = run_in_job(run.task, list(run.argv))
                    results.append(RunResult(run, status, message))
                progress(f"        -> {results[-1].status}" + (f": {results[-1].message}" if results[-1].message else ""))
            return results
        return self._processes(runs, progress)

    def _command(self, run: PlannedRun) -> list[str]:
        argv = list(run.argv)
        if self.threads and run.world_size == 1:
            argv += ["--trainer.threads", str(self.threads)]
        return [sys.executable, "-m", "tasks.cli", "run", run.task, *argv]

    def _processes(self, runs: list[PlannedRun], progress: Progress) -> list[RunResult]:
        log_dir = self.log_dir or Path(".")
        log_dir.mkdir(parents=True, exist_ok=True)
        pending = list(runs)
        active: list[tuple[PlannedRun, subprocess.Popen, Path]] = []
        results: list[RunResult] = []
        env = {**os.environ}
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        try:
            while pending or active:
                while pending and len(active) < self.parallel:
                    run = pending.pop(0)
                    log = log_dir / f"{run.run_dir.name}.log"
                    with open(log, "w") as fh:
                        proc = subprocess.Popen(self._command(run), stdout=fh, stderr=subprocess.STDOUT, env=env)
                    active.append((run, proc, log))
                    progress(f"started  {run.run_dir.name} (pid {proc.pid}, log {log})")
                for item in list(active):
                    run, proc, log = item
                    if proc.poll() is None:
                        continue
                    active.remove(item)
                    tail = log.read_text().strip().splitlines()[-1:] if log.is_file() else []
                    result = _result_from_disk(run, f"exit code {proc.returncode}: {tail[0] if tail else ''}")
                    results.append(result)
                    progress(f"finished {run.run_dir.name} -> {result.status}")
                time.sleep(0.2)
        finally:
            for _, proc, _ in active:  # Ctrl-C: children got SIGINT too; wait so they save last.ckpt
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        return results


class SubmititLauncher:
    """SLURM job arrays through submitit; where there is no SLURM, submitit's local executor.

    ``slurm`` holds submitit's parameters (partition, timeout_min, gpus_per_node,
    cpus_per_task, mem_gb, array_parallelism, ...); ``cluster`` may force
    ``local`` or ``debug``. Runs needing several devices are submitted as
    separate arrays with one task per device.
    """

    def __init__(self, folder: Path, slurm: dict | None = None, wait: bool = True) -> None:
        self.folder = folder
        self.slurm = dict(slurm or {})
        self.cluster = self.slurm.pop("cluster", None)
        self.wait = wait

    def launch(self, runs: list[PlannedRun], progress: Progress = print) -> list[RunResult]:
        try:
            import submitit
        except ImportError:
            raise ConfigError("the submitit launcher needs the submitit package: pip install submitit") from None
        executor = submitit.AutoExecutor(folder=str(self.folder), cluster=self.cluster)
        on_slurm = executor.cluster == "slurm"
        if not on_slurm:
            progress(f"no SLURM here: submitit runs the jobs locally ({executor.cluster} executor)")
        by_world: dict[int, list[PlannedRun]] = {}
        for run in runs:
            by_world.setdefault(run.world_size, []).append(run)
        jobs = []
        for world, group in sorted(by_world.items()):
            params = {"name": f"normbench-{group[0].run_dir.parent.name}", **self.slurm}
            if on_slurm:
                params.setdefault("tasks_per_node", world)
            executor.update_parameters(**params)
            submitted = executor.map_array(run_in_job, [r.task for r in group], [list(r.argv) for r in group])
            progress(f"submitted {len(submitted)} job(s) ({submitted[0].job_id.split('_')[0] if submitted else '-'})")
            jobs += list(zip(group, submitted))
        if not self.wait:
            progress("not waiting: rerun the sweep (or --dry-run) later to see which runs finished")
            return []
        results = []
        for run, job in jobs:
            try:
                status, message = job.result()
                if isinstance(status, list):  # multi-task jobs return one result per task
                    status, message = status[0]
                results.append(RunResult(run, status, message))
            except Exception as exc:  # the job itself died (time limit, node failure, ...)
                results.append(_result_from_disk(run, f"job {job.job_id} failed: {str(exc).splitlines()[0][:300]}"))
        return results
