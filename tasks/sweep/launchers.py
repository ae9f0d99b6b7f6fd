"""Launchers: run the planned runs here (sequentially or N processes at once) or on SLURM.

Whatever the launcher, a run's outcome is read back from its record, so the
summary is the same whether a run executed in this process, in a child process
or in a SLURM job. A run that fails does not stop the others.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..registry import get_task
from ..runner.errors import ConfigError
from ..runner.record import read_record
from .expand import PlannedRun
from .progress import SweepProgress

__all__ = ["RunResult", "LocalLauncher", "SubmititLauncher", "run_in_job"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    run: PlannedRun
    status: str  # finished, diverged, failed, skipped, refused, running_elsewhere
    message: str = ""


def _result_from_disk(run: PlannedRun, fallback: str) -> RunResult:
    record = read_record(run.run_dir)
    if record is None:
        return RunResult(run, "failed", fallback or "no record was written")
    return RunResult(run, str(record.get("status")), str(record.get("error") or ""))


def _stop_with_parent() -> None:
    """Worker initializer: on Linux, a worker gets SIGINT when the sweep process dies (even by SIGKILL).

    SIGINT is Ctrl-C for the run in the worker: Lightning saves ``interrupted.ckpt`` and the
    run resumes on the next sweep, instead of training on, orphaned, with nobody to report to.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None).prctl(1, int(signal.SIGINT))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def run_in_job(task_name: str, argv: list[str]) -> tuple[str, str, float]:
    """Execute one run in the current process (used in-process, in workers and in SLURM jobs).

    Returns (status, message, seconds); a run refused before it started is ``refused``.
    """
    from ..data.errors import DataError
    from ..runner.parse import parse_config
    from ..runner.run import execute

    started = time.perf_counter()
    task = get_task(task_name)
    try:
        outcome = execute(parse_config(task, argv, raise_errors=True), task, argv=argv)
    except (ConfigError, DataError) as exc:
        return "refused", str(exc), time.perf_counter() - started
    return outcome.status, outcome.message, time.perf_counter() - started


class LocalLauncher:
    """Runs on this machine: one after another in this process, or ``parallel`` at once.

    Parallel runs go to a pool of worker processes that each run several runs in
    turn (so torch and Lightning are imported once per worker, not per run),
    with ``threads_per_run`` torch threads each (default: the cores divided
    among the workers). Multi-device runs always get a process of their own,
    one at a time, because Lightning's DDP launcher re-executes the command.
    """

    def __init__(self, parallel: int = 1, threads_per_run: int = 0, log_dir: Path | None = None) -> None:
        self.parallel = max(1, parallel)
        cores = os.cpu_count() or 1
        self.threads = threads_per_run or (max(1, cores // self.parallel) if self.parallel > 1 else 0)
        self.log_dir = log_dir or Path(".")

    def launch(self, runs: list[PlannedRun], progress: Progress = print) -> list[RunResult]:
        single = [r for r in runs if r.world_size == 1]
        multi = [r for r in runs if r.world_size > 1]
        counter = SweepProgress(len(runs), progress)
        pooled = self.parallel > 1 and len(single) > 1
        where = f"{self.parallel} worker processes, {self.threads or 'default'} threads each" if pooled else "this process"
        progress(f"{len(runs)} runs to do on {where}; a line per finished run follows")
        results = self._pool(single, counter) if pooled else self._here(single, counter)
        for run in multi:
            started = time.perf_counter()
            result = self._subprocess(run)
            results.append(result)
            counter.finished(run.run_dir.name, result.status, result.message, time.perf_counter() - started)
        return results

    def _argv(self, run: PlannedRun) -> list[str]:
        extra = ["--trainer.threads", str(self.threads)] if self.threads and run.world_size == 1 else []
        return list(run.argv) + extra

    def _here(self, runs: list[PlannedRun], counter: SweepProgress) -> list[RunResult]:
        results = []
        for run in runs:
            status, message, seconds = run_in_job(run.task, self._argv(run))
            results.append(RunResult(run, status, message))
            counter.finished(run.run_dir.name, status, message, seconds)
        return results

    def _pool(self, runs: list[PlannedRun], counter: SweepProgress) -> list[RunResult]:
        results: list[RunResult] = []  # each run sets its torch threads (--trainer.threads)
        with ProcessPoolExecutor(max_workers=self.parallel, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_stop_with_parent) as pool:
            futures = {pool.submit(run_in_job, run.task, self._argv(run)): run for run in runs}
            try:
                for future in as_completed(futures):
                    run = futures[future]
                    seconds = None
                    try:
                        status, message, seconds = future.result()
                    except Exception as exc:  # the worker died (killed, out of memory, ...)
                        status, message = _result_from_disk(run, f"worker process failed: {exc}").status, str(exc)
                    results.append(RunResult(run, status, message))
                    counter.finished(run.run_dir.name, status, message, seconds)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return results

    def _subprocess(self, run: PlannedRun) -> RunResult:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{run.run_dir.name}.log"
        command = [sys.executable, "-m", "tasks.cli", "run", run.task, *self._argv(run)]
        with open(log, "w") as fh:
            proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT)
            try:
                proc.wait()
            except BaseException:  # Ctrl-C reaches the child too; give it time to save last.ckpt
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
        tail = log.read_text().strip().splitlines()[-1:]
        return _result_from_disk(run, f"exit code {proc.returncode}: {tail[0] if tail else ''} (log: {log})")


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
        counter = SweepProgress(len(jobs), progress)
        for run, job in jobs:
            try:
                outcome = job.result()
                if isinstance(outcome, list):  # multi-task jobs return one result per task
                    outcome = outcome[0]
                status, message, seconds = outcome
                results.append(RunResult(run, status, message))
                counter.finished(run.run_dir.name, status, message, seconds)
            except Exception as exc:  # the job itself died (time limit, node failure, ...)
                results.append(_result_from_disk(run, f"job {job.job_id} failed: {str(exc).splitlines()[0][:300]}"))
                counter.finished(run.run_dir.name, results[-1].status, results[-1].message)
        return results
