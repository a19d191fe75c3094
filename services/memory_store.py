"""The conversation's memory: an SQLite FTS5 table of turns, ranked by BM25 (stdlib sqlite3).

Every turn is committed (WAL, ``synchronous=FULL``) before :meth:`MemoryStore.add` returns,
so a turn whose message was acknowledged survives a kill -9 or a power cut. A file that is
no database, or a damaged one, is moved aside (``<name>.corrupt-<time>``) and a new one made:
the service reports it and carries on, it never loops crashing. Queries are built from the
words of the text only, each quoted, so no user input is ever FTS5 syntax.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Hit", "MemoryStore", "StoreError", "Turn", "match_expression"]

log = logging.getLogger("tars.memory")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
    msg_id TEXT UNIQUE, correlate TEXT, source TEXT);
CREATE INDEX IF NOT EXISTS turns_ts ON turns (ts);
CREATE VIRTUAL TABLE IF NOT EXISTS turns_fts USING fts5(
    text, content='turns', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS turns_ai AFTER INSERT ON turns BEGIN
    INSERT INTO turns_fts (rowid, text) VALUES (new.id, new.text); END;
CREATE TRIGGER IF NOT EXISTS turns_ad AFTER DELETE ON turns BEGIN
    INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
"""
_WORD = re.compile(r"\w+")
_STOP = frozenset(("a", "an", "and", "are", "at", "be", "can", "did", "do", "does", "how", "i",
                   "in", "is", "it", "me", "my", "of", "on", "or", "so", "the", "to", "was",
                   "what", "who", "you", "your"))
MAX_TEXT = 2000  # characters kept of one turn
MAX_TERMS = 24


class StoreError(Exception):
    """The store cannot do its job (disk full, directory not writable...)."""


@dataclass(frozen=True)
class Turn:
    """One thing heard (``stt/final``) or said (``tts/say``)."""

    role: str
    text: str
    msg_id: str | None = None
    correlate: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Hit:
    """One query result; ``score`` is BM25's, higher is better."""

    id: int
    role: str
    text: str
    ts: float
    score: float
    correlate: str | None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "role": self.role, "text": self.text,
                                "ts": self.ts, "score": self.score}
        if self.correlate:
            data["correlate"] = self.correlate
        return data


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH for the words of ``text`` (any of them, quoted), or None if it has none.

    ``\\w+`` words hold no quote, so quoting each makes every word a plain string: ``AND``,
    ``NEAR(``, ``*``, ``"`` or ``col:`` typed by a user are never operators.
    """
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    meaningful = [w for w in words if w not in _STOP] or words
    if not meaningful:
        return None
    return " OR ".join(f'"{w}"' for w in meaningful[:MAX_TERMS])


class MemoryStore:
    """Thread-safe; one connection, serialised by a lock (SQLite writes one at a time)."""

    def __init__(self, path: Path, *, max_age: float, max_turns: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.path, self.max_age, self.max_turns, self._clock = path, max_age, max_turns, clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.recovered: list[str] = []  # why files were moved aside, for the service to report

    def open(self) -> MemoryStore:
        """Open (or make) the database, recovering a corrupt file.

        Raises:
            StoreError: it cannot be made at all (e.g. the directory is not writable).
        """
        with self._lock:
            self._db = self._connect()
        return self

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def add(self, turn: Turn) -> bool:
        """Store ``turn`` durably; False when its ``msg_id`` is already stored (a redelivery)."""
        text = turn.text.strip()[:MAX_TEXT]

        def insert(db: sqlite3.Connection) -> bool:
            with db:
                cur = db.execute(
                    "INSERT OR IGNORE INTO turns (ts, role, text, msg_id, correlate, source)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (self._clock(), turn.role, text, turn.msg_id, turn.correlate, turn.source))
                self._prune(db)
                return cur.rowcount == 1

        return bool(self._run(insert))

    def query(self, text: str, k: int) -> list[Hit]:
        """Up to ``k`` turns matching words of ``text``, best (BM25) first."""
        expression = match_expression(text)
        if expression is None or k <= 0:
            return []

        def search(db: sqlite3.Connection) -> list[Hit]:
            rows = db.execute(
                "SELECT t.id, t.role, t.text, t.ts, bm25(turns_fts), t.correlate"
                " FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid"
                " WHERE turns_fts MATCH ? ORDER BY bm25(turns_fts), t.id DESC LIMIT ?",
                (expression, k)).fetchall()
            return [Hit(r[0], r[1], r[2], r[3], -r[4], r[5]) for r in rows]

        return list(self._run(search))

    def prune(self) -> int:
        """Forget turns older than ``max_age`` s and beyond the newest ``max_turns``."""
        def run(db: sqlite3.Connection) -> int:
            with db:
                return self._prune(db)
        return int(self._run(run))

    def count(self) -> int:
        return int(self._run(lambda db: db.execute("SELECT count(*) FROM turns").fetchone()[0]))

    def _prune(self, db: sqlite3.Connection) -> int:
        old = db.execute("DELETE FROM turns WHERE ts < ?", (self._clock() - self.max_age,))
        extra = db.execute("DELETE FROM turns WHERE id <= (SELECT id FROM turns ORDER BY id DESC"
                           " LIMIT 1 OFFSET ?)", (self.max_turns,))
        return max(0, old.rowcount) + max(0, extra.rowcount)

    def _run(self, step: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``step``; a database found corrupt meanwhile is moved aside and remade once."""
        with self._lock:
            if self._db is None:
                raise StoreError("the memory store is closed")
            try:
                return step(self._db)
            except UnicodeEncodeError:  # sqlite3 binds text as UTF-8: a lone surrogate
                raise StoreError("text that is not valid UTF-8 is not stored") from None
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise StoreError(f"{self.path}: {exc}") from None
                self._db.close()
                self._db = None
                self._db = self._connect(reason=str(exc))
                return step(self._db)

    def _connect(self, reason: str | None = None) -> sqlite3.Connection:
        if reason is not None:
            self._move_aside(reason)
        try:
            return self._prepare()
        except sqlite3.DatabaseError as exc:
            if reason is not None or not _is_corrupt(exc):
                raise StoreError(f"cannot open the memory database {self.path}: {exc}") from None
            self._move_aside(str(exc))
        try:
            return self._prepare()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot make a new memory database {self.path}: {exc}") from None

    def _prepare(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False,
                             isolation_level="DEFERRED")
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
            db.execute("SELECT count(*) FROM turns_fts WHERE turns_fts MATCH 'tars'").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))
        message = f"the memory database {self.path} was damaged ({reason}): moved aside to" \
                  f" {aside}, starting with an empty memory"
        log.error("%s", message)
        self.recovered.append(message)


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("malformed", "not a database", "corrupt", "file is encrypted"))
