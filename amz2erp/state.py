"""Run state in an embedded SQLite database: cursors, the per-record ledger, run history, backfill
checkpoints, and the run lock.

The ledger is what makes writes exactly-once across crashes: before each ERPNext write the record is marked
``writing`` (intent) with the content hash it is about to write; after the write it becomes ``done`` with the
ERPNext name. A record found ``writing`` on the next run is resolved by looking it up in ERPNext by its natural
key, never by a blind second insert.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from amz2erp.clock import Clock, default_clock
from amz2erp.errors import LockHeldError, StateError

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE cursors (
        stream TEXT NOT NULL,
        marketplace TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (stream, marketplace)
    );
    CREATE TABLE ledger (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        erp_name TEXT,
        content_hash TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        info TEXT,
        marketplace TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    );
    CREATE INDEX ledger_status ON ledger (kind, status);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        command TEXT NOT NULL,
        pid INTEGER,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        exit_code INTEGER,
        counts TEXT
    );
    CREATE TABLE checkpoints (
        job TEXT NOT NULL,
        chunk_start TEXT NOT NULL,
        chunk_end TEXT NOT NULL,
        orders INTEGER NOT NULL DEFAULT 0,
        done_at TEXT NOT NULL,
        PRIMARY KEY (job, chunk_start)
    );
    """,
}

class Kind(str, Enum):
    """What a ledger entry is about. The values are the ones stored in the ``kind`` column."""

    ORDER = "order"
    LISTING = "listing"
    ITEM = "item"
    CUSTOMER = "customer"
    ADDRESS = "address"
    SETTLEMENT = "settlement"  # sync-settlements: one entry per settlement-id
    # invoice mode: one entry per document, keyed by its amazon_posting_key (invoice_refs)
    INVOICE = "invoice"
    DELIVERY_NOTE = "delivery_note"
    CREDIT_NOTE = "credit_note"
    RECEIPT = "receipt"

    def __str__(self) -> str:  # the stored value in messages and tables, not "Kind.ORDER"
        return self.value


class Status(str, Enum):
    """Where a ledger entry stands. The values are the ones stored in the ``status`` column."""

    WRITING = "writing"  # intent recorded; the ERPNext write may or may not have committed
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class LedgerEntry:
    kind: Kind
    key: str
    erp_name: str | None
    content_hash: str | None
    status: Status
    attempts: int
    last_error: str | None
    info: dict[str, Any]
    marketplace: str | None
    updated_at: str


class StateStore:
    """Thread-safe access to the state database. One instance per process; close() when done."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        # the run's clock: under `amz2erp demo` (a simulated clock) the ledger's times match the simulators'
        self._clock = clock or default_clock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            if new:
                # Create it private before SQLite writes anything into it.
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open state database {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self._migrate()
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    # --- plumbing -------------------------------------------------------------------------------------

    def _now(self) -> str:
        return self._clock.now().astimezone(timezone.utc).isoformat(timespec="seconds")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        try:
            with self._tx() as db:
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row["value"]) if row else 0
                if version > SCHEMA_VERSION:
                    raise StateError(
                        f"state database {self.path} is schema v{version}, newer than this amz2erp "
                        f"(v{SCHEMA_VERSION}); upgrade amz2erp"
                    )
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(
                        "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (str(target),),
                    )
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.path} is unreadable: {exc}") from None

    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row["value"])

    # --- small values (e.g. the anchored end of an open-ended backfill) --------------------------------------

    def get_value(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (f"v:{key}",)).fetchone()
        return str(row["value"]) if row else None

    def set_value(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO meta(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                       (f"v:{key}", value))

    # --- cursors --------------------------------------------------------------------------------------

    def get_cursor(self, stream: str, marketplace: str) -> datetime | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM cursors WHERE stream=? AND marketplace=?", (stream, marketplace)
            ).fetchone()
        return datetime.fromisoformat(row["value"]) if row else None

    def set_cursor(self, stream: str, marketplace: str, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("cursor must be timezone-aware")
        with self._tx() as db:
            db.execute(
                "INSERT INTO cursors(stream, marketplace, value, updated_at) VALUES(?,?,?,?) "
                "ON CONFLICT(stream, marketplace) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                (stream, marketplace, value.isoformat(), self._now()),
            )

    def cursors(self) -> list[dict[str, str]]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM cursors ORDER BY stream, marketplace").fetchall()
        return [dict(r) for r in rows]

    # --- ledger ---------------------------------------------------------------------------------------

    @staticmethod
    def _entry(row: sqlite3.Row) -> LedgerEntry:
        return LedgerEntry(
            kind=Kind(row["kind"]),
            key=row["key"],
            erp_name=row["erp_name"],
            content_hash=row["content_hash"],
            status=Status(row["status"]),
            attempts=row["attempts"],
            last_error=row["last_error"],
            info=json.loads(row["info"]) if row["info"] else {},
            marketplace=row["marketplace"],
            updated_at=row["updated_at"],
        )

    def get(self, kind: Kind, key: str) -> LedgerEntry | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM ledger WHERE kind=? AND key=?", (kind, key)).fetchone()
        return self._entry(row) if row else None

    def _upsert(
        self,
        kind: Kind,
        key: str,
        *,
        status: Status,
        erp_name: str | None = None,
        content_hash: str | None = None,
        error: str | None = None,
        info: dict[str, Any] | None = None,
        marketplace: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        with self._tx() as db:
            db.execute(
                """
                INSERT INTO ledger(kind, key, erp_name, content_hash, status, attempts, last_error, info,
                                   marketplace, updated_at)
                VALUES(?,?,?,?,?,?,?,?,?,?)
                ON CONFLICT(kind, key) DO UPDATE SET
                    erp_name=COALESCE(excluded.erp_name, ledger.erp_name),
                    content_hash=COALESCE(excluded.content_hash, ledger.content_hash),
                    status=excluded.status,
                    attempts=ledger.attempts + ?,
                    last_error=excluded.last_error,
                    info=COALESCE(excluded.info, ledger.info),
                    marketplace=COALESCE(excluded.marketplace, ledger.marketplace),
                    updated_at=excluded.updated_at
                """,
                (
                    kind,
                    key,
                    erp_name,
                    content_hash,
                    status,
                    1 if count_attempt else 0,
                    error,
                    json.dumps(info, sort_keys=True, default=str) if info is not None else None,
                    marketplace,
                    self._now(),
                    1 if count_attempt else 0,
                ),
            )

    def mark_writing(self, kind: Kind, key: str, content_hash: str, *, marketplace: str | None = None) -> None:
        """Record the intent to write ``key`` with this content before touching ERPNext."""
        self._upsert(kind, key, status=Status.WRITING, content_hash=None, marketplace=marketplace, count_attempt=True)
        with self._tx() as db:
            db.execute(
                "UPDATE ledger SET info=json_set(COALESCE(info,'{}'), '$.pending_hash', ?) WHERE kind=? AND key=?",
                (content_hash, kind, key),
            )

    def mark_done(
        self,
        kind: Kind,
        key: str,
        erp_name: str,
        content_hash: str,
        *,
        info: dict[str, Any] | None = None,
        marketplace: str | None = None,
    ) -> None:
        self._upsert(
            kind, key, status=Status.DONE, erp_name=erp_name, content_hash=content_hash, info=info or {},
            marketplace=marketplace,
        )

    def mark_failed(
        self, kind: Kind, key: str, error: str, *, marketplace: str | None = None, info: dict[str, Any] | None = None,
        last_update: datetime | None = None,
    ) -> None:
        """``last_update`` (the record's own last-update time at Amazon) lets a retry find it again in bulk,
        by a time-range read, instead of one call per record."""
        self._upsert(kind, key, status=Status.FAILED, error=error[:2000], marketplace=marketplace, info=info,
                     count_attempt=True)
        if last_update is not None:
            with self._tx() as db:
                db.execute(
                    "UPDATE ledger SET info=json_set(COALESCE(info,'{}'), '$.last_update', ?) WHERE kind=? AND key=?",
                    (last_update.isoformat(), kind, key),
                )

    def forget_failed(self, kind: Kind, keys: list[str]) -> list[LedgerEntry]:
        """Drop failed records (a user's decision: never retry them); returns what was removed. Records in any
        other status are left alone: done ones are what keeps writes exactly-once."""
        if not keys:
            return []
        with self._tx() as db:
            marks = ",".join("?" * len(keys))
            rows = db.execute(f"SELECT * FROM ledger WHERE kind=? AND status=? AND key IN ({marks}) ORDER BY key",
                              (kind, Status.FAILED, *keys)).fetchall()
            db.execute(f"DELETE FROM ledger WHERE kind=? AND status=? AND key IN ({marks})", (kind, Status.FAILED, *keys))
        return [self._entry(r) for r in rows]

    def mark_skipped(self, kind: Kind, key: str, reason: str, *, marketplace: str | None = None,
                     info: dict[str, Any] | None = None) -> None:
        self._upsert(kind, key, status=Status.SKIPPED, error=reason[:2000], marketplace=marketplace, info=info)

    def forget(self, kind: Kind, key: str) -> None:
        """Drop a record's entry (an intent whose write ERPNext definitely refused)."""
        with self._tx() as db:
            db.execute("DELETE FROM ledger WHERE kind=? AND key=?", (kind, key))

    def entries(self, kind: Kind | None = None, status: Status | None = None) -> list[LedgerEntry]:
        sql = "SELECT * FROM ledger WHERE 1=1"
        args: list[Any] = []
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        if status:
            sql += " AND status=?"
            args.append(status)
        sql += " ORDER BY kind, key"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._entry(r) for r in rows]

    def count(self, kind: Kind, status: Status | None = None) -> int:
        sql = "SELECT COUNT(*) FROM ledger WHERE kind=?"
        args: list[Any] = [kind]
        if status:
            sql += " AND status=?"
            args.append(status)
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    # --- runs -----------------------------------------------------------------------------------------

    def start_run(self, command: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs(command, pid, started_at) VALUES(?,?,?)", (command, os.getpid(), self._now())
            )
            return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, exit_code: int, counts: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET ended_at=?, exit_code=?, counts=? WHERE id=?",
                (self._now(), exit_code, json.dumps(counts, sort_keys=True, default=str), run_id),
            )

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["counts"] = json.loads(d["counts"]) if d["counts"] else None
            out.append(d)
        return out

    # --- backfill checkpoints -------------------------------------------------------------------------

    def checkpoint_done(self, job: str, chunk_start: datetime, chunk_end: datetime, orders: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO checkpoints(job, chunk_start, chunk_end, orders, done_at) VALUES(?,?,?,?,?) "
                "ON CONFLICT(job, chunk_start) DO UPDATE SET chunk_end=excluded.chunk_end, orders=excluded.orders, "
                "done_at=excluded.done_at",
                (job, chunk_start.isoformat(), chunk_end.isoformat(), orders, self._now()),
            )

    def checkpoints(self, job: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM checkpoints WHERE job=?", (job,)).fetchall()
        return {r["chunk_start"]: dict(r) for r in rows}


class RunLock:
    """An exclusive, process-wide lock next to the state database.

    ``flock`` is released by the kernel when the holder dies, so a lock left by a SIGKILLed run is simply
    taken over by the next one; the pid written into the file is only used for the message.
    """

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.path = Path(f"{state_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.pread(fd, 64, 0).decode().strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockHeldError(f"another amz2erp run holds the lock{who}: {self.path}; try again later") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
