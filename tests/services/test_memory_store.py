"""The memory store on real SQLite files: ranking, retention, hostile queries, corruption."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.memory_store import MemoryStore, StoreError, Turn, match_expression


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[MemoryStore]:
    s = MemoryStore(tmp_path / "memory.db", max_age=3600, max_turns=100, clock=clock).open()
    yield s
    s.close()


def fill(store: MemoryStore, *texts: str) -> None:
    for n, text in enumerate(texts):
        store.add(Turn("heard" if n % 2 == 0 else "said", text, msg_id=f"m{n}-{text[:8]}"))


def test_query_ranks_by_bm25_and_returns_what_was_stored(store: MemoryStore) -> None:
    fill(store, "my cat is called Tom", "what a nice cat name",
         "the weather is nice today", "cat cat cat, Tom the cat",
         *[f"filler number {n} about robots" for n in range(8)])
    hits = store.query("tell me about Tom the cat", 3)
    assert [h.text for h in hits[:2]] == ["cat cat cat, Tom the cat", "my cat is called Tom"]
    assert all(h.score >= 0 for h in hits) and hits[0].score > hits[1].score >= hits[2].score
    assert hits[1].role == "heard" and hits[1].ts == 1_000_000.0
    assert store.query("weather", 5)[0].text == "the weather is nice today"
    assert store.query("zebra", 5) == [] and store.query("cat", 0) == []


def test_hostile_fts_syntax_is_plain_words(store: MemoryStore) -> None:
    fill(store, 'he said "NEAR(x AND y" * col:text OR', "plain words here")
    for query in ('"', '""', "NEAR(", "x* AND", "col:text", "AND OR NOT", "^", "(((",
                  "-", "\x00", "'; DROP TABLE turns; --", "ünïcödé", "🤖", "a" * 10_000):
        store.query(query, 5)  # never raises
    assert [h.text for h in store.query('NEAR( "col', 5)] == [
        'he said "NEAR(x AND y" * col:text OR']
    assert match_expression("  ,;: ") is None
    assert match_expression('a "b" c*') == '"b" OR "c"'  # quoted words, stop word dropped
    assert match_expression("what is it") == '"what" OR "is" OR "it"'  # only stop words: kept
    assert store.count() == 2


def test_a_redelivered_turn_is_stored_once(store: MemoryStore) -> None:
    assert store.add(Turn("heard", "hello", msg_id="abc"))
    assert not store.add(Turn("heard", "hello", msg_id="abc"))
    assert store.count() == 1


def test_retention_by_count_and_by_age(tmp_path: Path, clock: Clock) -> None:
    s = MemoryStore(tmp_path / "m.db", max_age=100, max_turns=3, clock=clock).open()
    fill(s, "one", "two", "three", "four", "five")
    assert s.count() == 3 and s.query("one", 5) == [] and s.query("five", 5)
    clock.now += 50
    s.add(Turn("heard", "six"))
    clock.now += 60  # "three".."five" are now 110 s old, "six" 60 s
    assert s.prune() == 2 and s.count() == 1 and s.query("four", 5) == []
    assert [h.text for h in s.query("six", 5)] == ["six"]  # the FTS index followed the deletes
    s.close()


def test_turns_survive_reopening(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "m.db"
    s = MemoryStore(path, max_age=3600, max_turns=10, clock=clock).open()
    fill(s, "remember the milk")
    s.close()
    again = MemoryStore(path, max_age=3600, max_turns=10, clock=clock).open()
    assert [h.text for h in again.query("milk", 1)] == ["remember the milk"]
    assert again.recovered == []
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_file_that_is_no_database_is_moved_aside_and_replaced(tmp_path: Path,
                                                                clock: Clock) -> None:
    path = tmp_path / "memory.db"
    path.write_bytes(b"this is not SQLite at all\n" * 400)
    s = MemoryStore(path, max_age=3600, max_turns=10, clock=clock).open()
    [problem] = s.recovered
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name and not p.name.endswith(
        ("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not SQLite")
    assert "damaged" in problem and str(aside[0]) in problem
    fill(s, "a fresh start")
    assert s.count() == 1
    s.close()


def test_damaged_pages_are_found_and_replaced(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "memory.db"
    s = MemoryStore(path, max_age=3600, max_turns=10_000, clock=clock).open()
    fill(s, *[f"turn number {n} with some words to fill pages" for n in range(600)])
    s.close()
    raw = bytearray(path.read_bytes())
    assert len(raw) > 8192
    raw[4096:len(raw) - 1024] = b"\xde\xad" * ((len(raw) - 5120) // 2)  # keep the header
    path.write_bytes(bytes(raw))
    again = MemoryStore(path, max_age=3600, max_turns=10, clock=clock).open()
    assert len(again.recovered) == 1 and again.count() == 0
    again.close()


def test_an_unusable_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        MemoryStore(tmp_path / "missing" / "m.db", max_age=1, max_turns=1).open()
    s = MemoryStore(tmp_path / "m.db", max_age=1, max_turns=1)
    with pytest.raises(StoreError, match="closed"):
        s.count()
