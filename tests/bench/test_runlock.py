"""One writer per run (issue 25, item 1): the run lock between real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.runlock import LockedBy, RunLock, RunLockError, held_here, read_lock, run_lock_path, try_lock

REPO = Path(__file__).resolve().parents[2]

HOLDER = """
import sys
from bench.runlock import try_lock
got = try_lock(sys.argv[1], run_id="r", command="holder test")
print("held" if hasattr(got, "release") else "refused: " + got.describe(), flush=True)
sys.stdin.readline()  # hold it until told to go (or killed)
if hasattr(got, "release"):
    got.release()  # as a run does at its end
"""


class Holder:
    """Another process that takes the lock at ``path`` and keeps it until ``done()`` or ``kill()``."""

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.first_line = self.proc.stdout.readline().strip()

    def done(self) -> None:
        self.proc.communicate("\n", timeout=30)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def holder(tmp_path):
    started = []

    def start(path: Path) -> Holder:
        started.append(Holder(path))
        return started[-1]

    yield start
    for h in started:
        if h.proc.poll() is None:
            h.kill()


def test_a_second_process_is_refused_and_told_who_holds_the_lock(tmp_path, holder):
    path = run_lock_path(tmp_path / "runs", "paper-drnet-s0")
    assert path == tmp_path / "runs" / ".locks" / "paper-drnet-s0.lock"
    other = holder(path)
    assert other.first_line == "held"
    got = try_lock(path)
    assert isinstance(got, LockedBy) and got == read_lock(path)
    assert (got.host, got.pid, got.command, got.run_id) == (socket.gethostname(), other.proc.pid, "holder test", "r")
    since = datetime.fromisoformat(got.since)
    assert since.tzinfo is not None and abs((datetime.now(timezone.utc) - since).total_seconds()) < 60
    assert got.describe() == f"locked by {socket.gethostname()}:{other.proc.pid} since {got.since}"
    other.done()  # released at the end of the run
    assert read_lock(path) is None and not path.parent.exists()  # the file goes with the lock, and .locks/ too
    mine = try_lock(path, run_id="paper-drnet-s0", command="bench run")
    assert isinstance(mine, RunLock) and mine.held
    assert json.loads(path.read_text())["pid"] == os.getpid()  # reading the file here does not let go of it
    assert (
        holder(path).first_line == f"refused: locked by {socket.gethostname()}:{os.getpid()} since {mine.holder.since}"
    )
    mine.release()
    assert not mine.held and holder(path).first_line == "held"


def test_a_holder_killed_outright_leaves_no_lock_behind(tmp_path, holder):
    path = run_lock_path(tmp_path, "r")
    other = holder(path)
    assert other.first_line == "held"
    other.kill()  # kill -9: no cleanup ran, its record is still in the file
    assert json.loads(path.read_text())["pid"] == other.proc.pid
    assert read_lock(path) is None  # a record without a holder is no holder
    with try_lock(path) as mine:
        assert isinstance(mine, RunLock) and held_here(path)  # the stale file is reused
    assert not held_here(path) and not path.exists()


def test_a_lock_file_removed_by_its_releaser_while_we_took_it_is_not_ours(tmp_path, monkeypatch):
    """The holder removes the file as it lets go: a locker that opened the old file must lock the new one."""
    import bench.runlock as runlock

    path = run_lock_path(tmp_path, "r")
    real_lock, calls = runlock._lock, []

    def lock_after_a_release(fd):
        calls.append(fd)
        if len(calls) == 1:  # as if the previous holder removed the file just before we locked our copy of it
            path.unlink()
        return real_lock(fd)

    monkeypatch.setattr(runlock, "_lock", lock_after_a_release)
    with try_lock(path) as mine:
        assert len(calls) == 2 and os.path.samestat(os.stat(path), os.fstat(mine._fd))


def test_the_holder_reading_its_own_lock_keeps_it(tmp_path, holder):
    """POSIX locks go when the holding process closes any descriptor of the file: reading must not open it."""
    path = run_lock_path(tmp_path, "r")
    with try_lock(path, run_id="r") as mine:
        assert read_lock(path) == mine.holder and read_lock(path).pid == os.getpid()
        with pytest.raises(RunLockError, match="already held by this process"):
            try_lock(path)
        assert holder(path).first_line.startswith("refused: locked by")  # still held
    assert holder(path).first_line == "held"


def test_a_lock_that_nobody_took_reads_as_free(tmp_path):
    assert read_lock(tmp_path / ".locks" / "never.lock") is None
    assert LockedBy(None, 12, None).describe() == "locked by ?:12 (no holder record yet)"
    assert LockedBy("n1", 5, "2025-01-31T12:00:00+00:00", job_id="998").describe() == (
        "locked by n1:5 (SLURM job 998) since 2025-01-31T12:00:00+00:00"
    )


FORKING_HOLDER = """
import os, sys, time
from bench.runlock import try_lock
got = try_lock(sys.argv[1])
child = os.fork()
if child == 0:  # a DataLoader worker, say; the fork hooks have run once it runs its own code
    print(os.getpid(), flush=True)
    time.sleep(60)
    os._exit(0)
sys.stdin.readline()
"""


def test_a_forked_child_does_not_keep_a_dead_holders_lock(tmp_path):
    path = run_lock_path(tmp_path, "r")
    proc = subprocess.Popen(
        [sys.executable, "-c", FORKING_HOLDER, str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(proc.stdout.readline())  # written by the child
    try:
        assert read_lock(path).pid == proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.kill(child, 0)  # the child lives on
        assert read_lock(path) is None  # and holds nothing
    finally:
        os.kill(child, signal.SIGKILL)
