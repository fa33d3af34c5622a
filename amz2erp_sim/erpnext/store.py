"""SQLite storage and list queries of the ERPNext simulator.

One row per document (children live inside the parent's JSON). Callers hold the simulator's lock; a
write runs inside ``transaction()`` so that a failure (or a bad doc in insert_many) rolls everything back,
naming-series counters included.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doctype TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (doctype, name)
);
CREATE TABLE IF NOT EXISTS series (prefix TEXT PRIMARY KEY, current INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dyn_links (
    link_doctype TEXT NOT NULL, link_name TEXT NOT NULL, parenttype TEXT NOT NULL, parent TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dyn_links ON dyn_links (link_doctype, link_name, parenttype);
CREATE INDEX IF NOT EXISTS ix_dyn_links_parent ON dyn_links (parenttype, parent);
"""

# Fields filtered on often enough to deserve an expression index (custom fields get one when created).
INDEXED_FIELDS = (
    "po_no",
    "customer",
    "item_code",
    "amended_from",
    "dt",
    "customer_name",
    "from_currency",
    "code",
)
_FIELD_OK = re.compile(r"^[A-Za-z0-9_]+$")


def _path(field: str) -> str:
    return f"'$.\"{field}\"'"


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)
        self._depth = 0
        self.on_rollback: list[Callable[[], None]] = []
        for field in INDEXED_FIELDS:
            self.ensure_index(field)

    def ensure_index(self, field: str) -> None:
        if _FIELD_OK.match(field):
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS ix_f_{field} ON docs (doctype, "
                f"json_extract(data, {_path(field)}))"
            )

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            for callback in self.on_rollback:
                callback()
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    # -- documents -------------------------------------------------------------------------------
    def get(self, doctype: str, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT data FROM docs WHERE doctype=? AND name=?", (doctype, name)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def exists(self, doctype: str, name: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM docs WHERE doctype=? AND name=?", (doctype, name)).fetchone()
        return row is not None

    def insert(self, doc: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO docs (doctype, name, data) VALUES (?, ?, ?)",
            (doc["doctype"], doc["name"], json.dumps(doc, ensure_ascii=False)),
        )
        self._sync_links(doc)

    def update(self, doc: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE docs SET data=? WHERE doctype=? AND name=?",
            (json.dumps(doc, ensure_ascii=False), doc["doctype"], doc["name"]),
        )
        self._sync_links(doc)

    def delete(self, doctype: str, name: str) -> None:
        self.conn.execute("DELETE FROM docs WHERE doctype=? AND name=?", (doctype, name))
        self.conn.execute("DELETE FROM dyn_links WHERE parenttype=? AND parent=?", (doctype, name))

    def _sync_links(self, doc: dict[str, Any]) -> None:
        if doc["doctype"] not in ("Address", "Contact"):
            return
        self.conn.execute(
            "DELETE FROM dyn_links WHERE parenttype=? AND parent=?", (doc["doctype"], doc["name"])
        )
        for row in doc.get("links") or []:
            if row.get("link_doctype") and row.get("link_name"):
                self.conn.execute(
                    "INSERT INTO dyn_links VALUES (?, ?, ?, ?)",
                    (str(row["link_doctype"]), str(row["link_name"]), doc["doctype"], doc["name"]),
                )

    def linked(self, parenttype: str, link_doctype: str, link_name: str) -> list[dict[str, Any]]:
        """Addresses / Contacts whose ``links`` table points at ``link_doctype`` ``link_name``."""
        rows = self.conn.execute(
            "SELECT d.data FROM dyn_links l JOIN docs d ON d.doctype=l.parenttype AND d.name=l.parent "
            "WHERE l.link_doctype=? AND l.link_name=? AND l.parenttype=? ORDER BY d.seq",
            (link_doctype, link_name, parenttype),
        )
        return [json.loads(r[0]) for r in rows]

    def scan(self, doctype: str, eq: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """All docs of a doctype in insertion order; ``eq`` pushes string equality filters into SQL."""
        sql = "SELECT data FROM docs WHERE doctype=?"
        args: list[Any] = [doctype]
        for field, value in (eq or {}).items():
            if field == "name":
                sql += " AND name=?"
            elif _FIELD_OK.match(field):
                sql += f" AND json_extract(data, {_path(field)})=?"
            else:
                continue
            args.append(value)
        sql += " ORDER BY seq"
        return [json.loads(r[0]) for r in self.conn.execute(sql, args)]

    def names_like(self, doctype: str, pattern: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM docs WHERE doctype=? AND name LIKE ? ESCAPE '\\'", (doctype, pattern)
            )
        ]

    # -- naming series ------------------------------------------------------------------------------
    def next_series(self, prefix: str) -> int:
        row = self.conn.execute("SELECT current FROM series WHERE prefix=?", (prefix,)).fetchone()
        current = (row[0] if row else 0) + 1
        self.conn.execute("INSERT OR REPLACE INTO series (prefix, current) VALUES (?, ?)", (prefix, current))
        return current

    def set_series(self, prefix: str, current: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO series (prefix, current) VALUES (?, ?)", (prefix, current))

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


# -- filters ---------------------------------------------------------------------------------------


def _num(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _cmp_pair(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        na, nb = _num(a if a is not None else 0), _num(b if b is not None else 0)
        if isinstance(na, (int, float)) and isinstance(nb, (int, float)):
            return na, nb
    return ("" if a is None else str(a)), ("" if b is None else str(b))


def _like(value: Any, pattern: Any) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, "" if value is None else str(value), re.IGNORECASE | re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return [value]


def match(doc: dict[str, Any], field: str, op: str, value: Any) -> bool:
    op = op.lower().strip()
    actual = doc.get(field)
    if op in ("=", "=="):
        a, b = _cmp_pair(actual, value)
        return a == b
    if op in ("!=", "<>"):
        a, b = _cmp_pair(actual, value)
        return a != b
    if op in ("<", ">", "<=", ">="):
        a, b = _cmp_pair(actual, value)
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    if op == "like":
        return _like(actual, value)
    if op == "not like":
        return not _like(actual, value)
    if op in ("in", "not in"):
        values = _as_list(value)
        found = any(_cmp_pair(actual, v)[0] == _cmp_pair(actual, v)[1] for v in values)
        return found if op == "in" else not found
    if op == "is":
        is_set = actual not in (None, "")
        return is_set if str(value).lower() == "set" else not is_set
    if op == "between":
        lo, hi = _as_list(value)[:2]
        a, b = _cmp_pair(actual, lo)
        c, d = _cmp_pair(actual, hi)
        return b <= a and c <= d
    raise ValueError(f"Unsupported operator {op}")


def normalize_filters(filters: Any, doctype: str) -> list[tuple[str, str, Any, str]]:
    """Frappe filter forms -> [(field, op, value, doctype the field belongs to)]."""
    if not filters:
        return []
    out: list[tuple[str, str, Any, str]] = []
    if isinstance(filters, dict):
        for field, value in filters.items():
            if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str):
                out.append((field, value[0], value[1], doctype))
            else:
                out.append((field, "=", value, doctype))
        return out
    for f in filters:
        if isinstance(f, dict):
            out.extend(normalize_filters(f, doctype))
        elif len(f) == 4:
            out.append((f[1], f[2], f[3], f[0] or doctype))
        elif len(f) == 3:
            out.append((f[0], f[1], f[2], doctype))
        elif len(f) == 2:
            out.append((f[0], "=", f[1], doctype))
        else:
            raise ValueError(f"Bad filter {f!r}")
    return out


def strip_field(field: str) -> str:
    field = field.strip()
    if "." in field:
        field = field.split(".")[-1]
    return field.strip("`").strip()


def parse_order_by(order_by: str | None) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for part in (order_by or "").split(","):
        bits = part.split()
        if not bits:
            continue
        desc = len(bits) > 1 and bits[1].lower() == "desc"
        out.append((strip_field(bits[0]), desc))
    return out
