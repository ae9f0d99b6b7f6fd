"""A per-run lease, so two launchers (or a resubmitted SLURM array) never train the same run at once.

The lease is a file in the run directory, created exclusively (``O_CREAT |
O_EXCL``, atomic on local disks and NFS), naming the holder (host, pid, a
random token). A heartbeat thread renews its modification time; a lease whose
file has not been renewed for ``ttl`` seconds is stale and may be taken over.
Age is measured against the file system's own clock (the mtime of a file
touched just now), never the local one, so clock skew between cluster nodes
does not matter. ``flock`` is not used: it is unreliable on network file systems.

A holder that was killed on *this* machine is recognized at once (its process
is gone), so a rerun right after Ctrl-C or a crash does not wait for the
timeout; on another node, it waits at most ``ttl``. Taking over a stale lease
renames it away first (only one contender's rename succeeds) and puts it back
if it turned out to be fresh, so two contenders cannot both win.

If the lease is lost anyway (a heartbeat blocked for longer than ``ttl``, and
another process took over), the heartbeat notices that the file is no longer
ours and :attr:`RunLease.lost` turns true; the run then stops without writing
a record.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["RunLease", "LEASE_NAME", "default_ttl", "lease_holder"]

LEASE_NAME = ".lease"
TTL_ENV = "NORMBENCH_LEASE_TTL"


def default_ttl() -> float:
    """Seconds without a heartbeat after which a lease is stale ($NORMBENCH_LEASE_TTL, default 300).

    Generous because network file systems cache file attributes for up to a minute.
    """
    try:
        return max(0.5, float(os.environ.get(TTL_ENV, "300")))
    except ValueError:
        return 300.0


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _first_line(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.readline().strip()
    except OSError:
        return ""


def _machine() -> str:
    """Host name plus kernel boot and pid namespace: two processes with equal values share a pid space."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}|{_first_line('/proc/sys/kernel/random/boot_id')}|{namespace}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (Linux), to tell a live pid from a reused one."""
    stat = _first_line(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[-1].split()[19] if ")" in stat else ""


def _process_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or _start_time(pid) in ("", started)


def _file_system_now(directory: Path) -> float:
    probe = directory / f".lease-clock-{uuid.uuid4().hex}"
    probe.touch()
    try:
        return probe.stat().st_mtime
    finally:
        probe.unlink(missing_ok=True)


def _age(path: Path) -> float | None:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return _file_system_now(path.parent) - mtime


def _holder_dead(info: dict[str, Any] | None) -> bool:
    if not info or info.get("machine") != _machine():
        return False
    pid = info.get("pid")
    return isinstance(pid, int) and not _process_alive(pid, str(info.get("started") or ""))


def lease_holder(directory: Path, ttl: float | None = None) -> dict[str, Any] | None:
    """Who holds the run's lease now (host, pid), or None when it is free or stale."""
    path = Path(directory) / LEASE_NAME
    age = _age(path)
    if age is None:
        return None
    info = _read(path)
    if age > (ttl if ttl is not None else default_ttl()) or _holder_dead(info):
        return None
    return info or {"host": "?", "pid": None}


class RunLease:
    """The lease of one run directory; use :meth:`acquire`, then :meth:`release` (or ``with``)."""

    def __init__(self, path: Path, token: str, ttl: float) -> None:
        self.path = path
        self.token = token
        self.ttl = ttl
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="normbench-lease", daemon=True)

    @classmethod
    def acquire(cls, directory: Path, ttl: float | None = None) -> "RunLease | None":
        """Take the lease of ``directory`` (created if needed); None when a live holder has it."""
        ttl = default_ttl() if ttl is None else ttl
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / LEASE_NAME
        token = uuid.uuid4().hex
        pid = os.getpid()
        body = json.dumps({"host": socket.gethostname(), "machine": _machine(), "pid": pid,
                           "started": _start_time(pid), "token": token, "acquired_at": time.time()})
        for _ in range(5):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = _read(path)
                age = _age(path)
                if age is None:
                    continue  # released meanwhile: try again
                if age <= ttl and not _holder_dead(info):
                    return None
                _break(path, (info or {}).get("token"), ttl)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            lease = cls(path, token, ttl)
            lease._thread.start()
            return lease
        return None

    def _heartbeat(self) -> None:
        interval = max(0.05, self.ttl / 5)
        while not self._stop.wait(interval):
            if (_read(self.path) or {}).get("token") != self.token:
                self.lost = True
                return
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.lost = True
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if (_read(self.path) or {}).get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "RunLease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _break(path: Path, observed_token: str | None, ttl: float) -> None:
    """Remove a stale lease unless someone renewed or replaced it since it was judged stale."""
    aside = path.with_name(f"{path.name}.breaking-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another contender broke it first
    info = _read(aside)
    age = _age(aside)
    still_stale = age is not None and (age > ttl or _holder_dead(info))
    if (info or {}).get("token") != observed_token or not still_stale:
        try:
            os.link(aside, path)  # it was a live lease: put it back (fails if a new one exists already)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)
