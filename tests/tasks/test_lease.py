"""Run leases: one process trains a run at a time, and a dead holder never blocks a rerun for long."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tasks.runner import lease as lease_module
from tasks.runner.lease import LEASE_NAME, RunLease, lease_holder

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")


def hold_in_child(directory: Path, ttl: float) -> subprocess.Popen:
    """A child process that takes the lease and keeps it (heartbeat running) until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from tasks.runner.lease import RunLease
        lease = RunLease.acquire({str(directory)!r}, ttl={ttl})
        print("held" if lease else "busy", flush=True)
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_held_lease_is_refused_and_free_again_after_release(tmp_path: Path) -> None:
    first = RunLease.acquire(tmp_path, ttl=30)
    assert first is not None
    assert RunLease.acquire(tmp_path, ttl=30) is None
    holder = lease_holder(tmp_path, ttl=30)
    assert holder is not None and holder["pid"] == os.getpid()
    first.release()
    assert not (tmp_path / LEASE_NAME).exists() and lease_holder(tmp_path) is None
    second = RunLease.acquire(tmp_path, ttl=30)
    assert second is not None
    second.release()


def test_a_sigkilled_holder_on_this_machine_is_replaced_at_once(tmp_path: Path) -> None:
    child = hold_in_child(tmp_path, ttl=60)
    assert RunLease.acquire(tmp_path, ttl=60) is None  # alive: refused
    child.send_signal(signal.SIGKILL)
    child.wait()
    started = time.monotonic()
    lease = RunLease.acquire(tmp_path, ttl=60)  # its process is gone: no need to wait for the timeout
    assert lease is not None and time.monotonic() - started < 5
    lease.release()


def test_a_sigkilled_holder_on_another_node_blocks_for_the_lease_timeout_only(tmp_path: Path, monkeypatch) -> None:
    child = hold_in_child(tmp_path, ttl=1.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    # seen from another node, the dead pid cannot be checked: only the missing heartbeat tells
    monkeypatch.setattr(lease_module, "_machine", lambda: "other-node|boot|ns")
    lease = None
    started = time.monotonic()
    while lease is None and time.monotonic() - started < 10:
        lease = RunLease.acquire(tmp_path, ttl=1.0)
        time.sleep(0.05)
    waited = time.monotonic() - started
    assert lease is not None and waited < 5
    assert json.loads((tmp_path / LEASE_NAME).read_text())["token"] == lease.token
    lease.release()


def test_the_heartbeat_keeps_a_live_lease_beyond_its_timeout(tmp_path: Path, monkeypatch) -> None:
    child = hold_in_child(tmp_path, ttl=0.6)
    try:
        monkeypatch.setattr(lease_module, "_machine", lambda: "other-node|boot|ns")
        time.sleep(1.5)  # more than twice the timeout
        assert RunLease.acquire(tmp_path, ttl=0.6) is None
    finally:
        child.kill()
        child.wait()


def test_a_holder_notices_when_its_lease_was_taken(tmp_path: Path) -> None:
    lease = RunLease.acquire(tmp_path, ttl=0.5)
    assert lease is not None
    (tmp_path / LEASE_NAME).write_text(json.dumps({"token": "someone-else"}))
    deadline = time.monotonic() + 5
    while not lease.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.lost
    lease.release()  # does not delete the other holder's file
    assert json.loads((tmp_path / LEASE_NAME).read_text())["token"] == "someone-else"


def test_a_run_held_elsewhere_is_not_trained(tmp_path: Path, capsys) -> None:
    from tasks.cli import main

    run_dir = tmp_path / "classification-fashion_mnist-resnet8-bn-bs8-s0"
    child = hold_in_child(run_dir, ttl=60)
    try:
        code = main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path)])
    finally:
        child.kill()
        child.wait()
    assert code == 1
    err = capsys.readouterr().err
    assert "running elsewhere" in err and f"pid {child.pid}" in err
    assert not (run_dir / "result.json").exists() and not (run_dir / "config.yaml").exists()


@pytest.mark.parametrize("launchers", [2])
def test_two_launchers_on_one_sweep_train_each_grid_point_once(tmp_path: Path, launchers: int) -> None:
    sweep = {
        "name": "race", "out_dir": str(tmp_path / "runs"),
        "tasks": [{"task": "classification", "config": TEST_CONFIG}],
        "norms": ["bn", "gn:num_groups=2"], "batch_sizes": [4, 8], "seeds": [0],
        "overrides": {"trainer.epochs": 3, "trainer.threads": 1},
    }
    path = tmp_path / "race.yaml"
    path.write_text(yaml.safe_dump(sweep))
    command = [sys.executable, "-m", "tasks.cli", "sweep", str(path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for _ in range(launchers)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    runs = sorted((tmp_path / "runs" / "race").iterdir())
    assert len(runs) == 4
    for run in runs:
        assert json.loads((run / "result.json").read_text())["status"] == "finished"
        rows = (run / "metrics.csv").read_text().splitlines()
        header = rows[0].split(",")
        step, loss = header.index("step"), header.index("train/loss")
        first_steps = [r for r in rows[1:] if r.split(",")[loss] and r.split(",")[step] == "0"]
        assert len(first_steps) == 1, f"{run.name} was trained {len(first_steps)} times"
    finished = sum(int(out.split("sweep summary: ")[1].split(" finished")[0]) for out in outputs)
    assert finished == 4, outputs  # every run finished exactly once across the two launchers
    for run in runs:  # and each was reported finished by one launcher only
        assert sum(f"{run.name} -> finished" in out for out in outputs) == 1, outputs


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_workers_stop_and_save_when_the_sweep_process_is_killed(tmp_path: Path) -> None:
    sweep = {
        "name": "killed", "out_dir": str(tmp_path / "runs"),
        "tasks": [{"task": "classification", "config": TEST_CONFIG}],
        "norms": ["bn", "gn:num_groups=2"], "batch_sizes": [2], "seeds": [0],
        "overrides": {"trainer.epochs": 50, "data.fraction": 0.01},
        "launcher": {"parallel": 2, "threads_per_run": 1},
    }
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(sweep))
    parent = subprocess.Popen([sys.executable, "-m", "tasks.cli", "sweep", str(path)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dirs = tmp_path / "runs" / "killed"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(run_dirs.glob("*/checkpoints/last.ckpt"))) < 2:
        time.sleep(0.5)  # both runs are training and have passed an epoch end
    workers = [c for c in _children(parent.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.5)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "orphaned workers kept training"
    for run in run_dirs.iterdir():
        assert (run / "checkpoints" / "interrupted.ckpt").is_file()  # Ctrl-C semantics: saved on the way out
        assert not (run / LEASE_NAME).exists() and not (run / "result.json").exists()
