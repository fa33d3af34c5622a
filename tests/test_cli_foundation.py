from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amz2erp.errors import LockHeldError
from amz2erp.state import RunLock, StateStore, Status
from tests.conftest import amz2erp_cmd


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*amz2erp_cmd(), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_help_lists_exit_codes() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "75 ", "130 "):
        assert f"\n    {code}" in result.stdout or f"  {code}" in result.stdout
    assert "init" in result.stdout and "status" in result.stdout


def test_console_script_installed() -> None:
    exe = shutil.which("amz2erp", path=os.path.dirname(sys.executable))
    assert exe, "the amz2erp console script is not installed next to this python"
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "amz2erp" in result.stdout


def test_init_writes_private_file_and_refuses_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "config.toml"
    first = _run("init", "--path", str(target))
    assert first.returncode == 0, first.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    assert "[amazon]" in target.read_text()
    target.write_text("mine")
    second = _run("init", "--path", str(target))
    assert second.returncode == 2
    assert "already exists" in second.stderr
    assert target.read_text() == "mine"
    third = _run("init", "--path", str(target), "--force")
    assert third.returncode == 0
    assert "[amazon]" in target.read_text()


def test_usage_error_exit_2() -> None:
    result = _run("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_state_schema_and_ledger(tmp_path: Path) -> None:
    path = tmp_path / "s" / "state.db"
    with StateStore(path) as state:
        assert state.schema_version() == 1
        state.mark_writing("order", "111-1", "h1")
        assert state.get("order", "111-1").status == Status.WRITING  # type: ignore[union-attr]
        state.mark_done("order", "111-1", "SAL-ORD-1", "h1")
        state.mark_failed("order", "111-2", "boom")
        state.mark_failed("order", "111-2", "boom again")
        entry = state.get("order", "111-2")
        assert entry is not None and entry.status == Status.FAILED and entry.attempts == 2
        assert entry.last_error == "boom again"
        assert [e.key for e in state.entries("order", Status.DONE)] == ["111-1"]
    assert path.stat().st_mode & 0o777 == 0o600
    # a newer schema is refused with a clear error
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    from amz2erp.errors import StateError

    with pytest.raises(StateError, match="newer than this amz2erp"):
        StateStore(path)


def test_run_lock_excludes_second_holder_and_survives_sigkill(tmp_path: Path) -> None:
    state_path = tmp_path / "state.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from amz2erp.state import RunLock; l=RunLock(sys.argv[1]); l.acquire(); "
         "print('locked', flush=True); time.sleep(60)", str(state_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError, match=rf"pid {holder.pid}"):
            RunLock(state_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # the kernel released the dead holder's lock: the next run takes it over
        with RunLock(state_path):
            pass
    finally:
        holder.kill()


def test_state_survives_sigkill_mid_write(tmp_path: Path) -> None:
    state_path = tmp_path / "state.db"
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from amz2erp.state import StateStore; s=StateStore(sys.argv[1]); i=0\n"
         "while True:\n    s.mark_writing('order', str(i), 'h'); s.mark_done('order', str(i), 'SO', 'h'); i+=1\n",
         str(state_path)],
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        if state_path.exists():
            try:
                with StateStore(state_path) as s:
                    if s.count("order") > 50:
                        break
            except Exception:
                pass
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    with StateStore(state_path) as state:
        done = state.count("order", Status.DONE)
        writing = state.count("order", Status.WRITING)
        assert done > 50
        assert writing <= 1  # at most the record in flight
        state.mark_done("order", "after-crash", "SO-X", "h")
        assert state.get("order", "after-crash") is not None
