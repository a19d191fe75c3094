"""tars-memory as a process against mosquitto: turns, queries, the persona, kill -9, damage."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tars_mqtt import Message, MQTTClient
from tars_mqtt.testing import Broker
from tests.integration.support import raw_envelope
from tests.integration.test_request_reply import RawV5
from tests.integration.test_services import Recorder, Service, stop_cleanly

TIMEOUT = 15.0


@pytest.fixture
def rec(make_client: Callable[..., MQTTClient]) -> Recorder:
    return Recorder(make_client())


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def start(broker: Broker, tmp_path: Path, rec: Recorder,
          state: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def run(after: int = 0, **env: str) -> Service:
        svc = Service("memory", broker, tmp_path, TARS_MEMORY_DIR=str(state), **env)
        started.append(svc)
        try:
            rec.wait("system/health/memory", timeout=20, after=after, event="ready")
        except AssertionError:
            svc.terminate()
            raise AssertionError(f"memory never got ready; log:\n{svc.log()}") from None
        return svc

    yield run
    for svc in started:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(TIMEOUT)


def query(rec: Recorder, text: str, **extra: object) -> Message:
    return rec.client.request("memory/query", "memory.query", {"text": text, **extra},
                              timeout=TIMEOUT, reply_topic="memory/results")


def stored(state: Path) -> list[str]:
    """The msg ids in the database, read as another process would (WAL allows it)."""
    with sqlite3.connect(state / "memory.db", timeout=5) as db:
        return [row[0] for row in db.execute("SELECT msg_id FROM turns ORDER BY id")]


def wait_stored(state: Path, count: int, timeout: float = TIMEOUT) -> list[str]:
    deadline = time.monotonic() + timeout
    while (ids := stored(state)) and len(ids) < count or not ids and count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(ids)} of {count} turns stored within {timeout} s")
        time.sleep(0.05)
    return ids


@pytest.mark.timeout(60)
def test_turns_queries_and_a_persona_change_that_survives_a_restart(
        start: Callable[..., Service], rec: Recorder, state: Path) -> None:
    svc = start()
    current = rec.wait("system/character/current")
    assert current.data["name"] == "TARS"
    assert current.data["traits"]["humor"] == 75
    c = rec.client
    hear(rec, "my cat is called Tom")
    c.publish_event("tts/say", "tts.say", {"text": "Tom is a fine name for a cat."}).wait(5)
    hear(rec, "the weather is grey")
    wait_stored(state, 3)
    found = query(rec, "what is my cat called", k=5)
    assert [r["text"] for r in found.data["results"]] == [
        "my cat is called Tom", "Tom is a fine name for a cat."]
    assert [r["role"] for r in found.data["results"]] == ["heard", "said"]
    assert query(rec, 'NEAR( "cat" AND *', k=1).data["results"][0]["text"].startswith(
        ("my cat", "Tom"))
    assert query(rec, "zebra").data == {"results": []}
    assert "text" in query(rec, 5).data["error"]  # type: ignore[arg-type]

    result = c.request("character/update", "character.update", {"trait": "humor", "value": 40},
                       timeout=TIMEOUT, reply_topic="character/result")
    assert result.data["traits"]["humor"] == 40 and "error" not in result.data
    refused = c.request("character/update", "character.update",
                        {"trait": "humor", "value": 400}, timeout=TIMEOUT,
                        reply_topic="character/result")
    assert "0 to 100" in refused.data["error"] and refused.data["traits"]["humor"] == 40
    stop_cleanly(svc, rec)

    mark = rec.mark()
    again = start(after=mark)
    got = c.request("character/get", "character.get", {}, timeout=TIMEOUT,
                    reply_topic="character/result")
    assert got.data["traits"]["humor"] == 40  # kept across the restart
    assert [r["text"] for r in query(rec, "weather").data["results"]] == ["the weather is grey"]
    stop_cleanly(again, rec)


@pytest.mark.timeout(60)
def test_text_no_encoder_can_send_is_refused_named_answered_and_never_stored(
        start: Callable[..., Service], rec: Recorder, state: Path, broker: Broker) -> None:
    """A lone surrogate escape is valid JSON: such turns are counted, not stored; such
    requests are answered (on their MQTT 5 reply topic) naming the field, not left to
    time out; and the service serves on."""
    svc = start()
    raw = RawV5(broker, "hostile-memory")
    try:
        for topic, data in (("stt/final", {"text": "my cat \ud800"}),
                            ("tts/say", {"text": "a\udfffb", "utt_id": "u1"})):
            raw.publish(topic, raw_envelope(data))
        for n, (topic, data) in enumerate((("memory/query", {"text": "cat \ud800"}),
                                           ("character/update", {"trait": "\ud800", "value": 3}),
                                           ("character/get", {"x": "\udc80"}))):
            raw.publish(topic, raw_envelope(data), correlation=f"q{n}".encode(),
                        response_topic="system/reply/hostile-memory")
        replies = {m.correlate: m.data for m in rec.wait_many("system/reply/hostile-memory", 3)}
    finally:
        raw.close()
    assert "'data.text'" in replies["q0"]["error"] and replies["q0"]["results"] == []
    assert "'data.trait'" in replies["q1"]["error"]
    assert replies["q1"]["traits"]["humor"] == 75  # unchanged
    assert "'data.x'" in replies["q2"]["error"] and replies["q2"]["name"] == "TARS"
    hear(rec, "the weather is grey")
    assert wait_stored(state, 1) and len(stored(state)) == 1  # only the good turn
    assert [r["text"] for r in query(rec, "weather").data["results"]] == ["the weather is grey"]
    stop_cleanly(svc, rec)
    assert svc.log().count("malformed message #") == 5  # each counted and logged
    assert len(stored(state)) == 1


SESSION = {"MQTT_CLEAN_START": "false", "MQTT_SESSION_EXPIRY": "300"}


def hear(rec: Recorder, *texts: str) -> None:
    for text in texts:
        rec.client.publish_event("stt/final", "stt.final", {"text": text}).wait(5)


def kill_9(svc: Service) -> None:
    os.kill(svc.proc.pid, signal.SIGKILL)  # no goodbye, no flush, no checkpoint
    svc.proc.wait(TIMEOUT)


@pytest.mark.timeout(60)
def test_kill_9_keeps_every_stored_turn_and_the_session_brings_the_missed_ones(
        start: Callable[..., Service], rec: Recorder, state: Path) -> None:
    svc = start(**SESSION)
    hear(rec, *(f"before {n}" for n in range(10)))
    wait_stored(state, 10)
    kill_9(svc)
    hear(rec, *(f"while down {n}" for n in range(10)))  # queued by the broker for memory
    again = start(after=rec.mark(), **SESSION)
    kept = wait_stored(state, 20)
    assert len(kept) == len(set(kept)) == 20
    assert {r["text"] for r in query(rec, "before 3", k=20).data["results"]} >= {"before 3"}
    stop_cleanly(again, rec)


@pytest.mark.timeout(60)
def test_kill_9_in_the_middle_of_a_burst_loses_no_acknowledged_turn(
        start: Callable[..., Service], rec: Recorder, state: Path) -> None:
    svc = start(**SESSION)
    for n in range(60):
        if n == 20:  # turns still arriving and queued in the service
            wait_stored(state, 5)
            kill_9(svc)
        hear(rec, f"turn {n}")
    again = start(after=rec.mark(), **SESSION)  # unacknowledged turns are delivered again
    kept = wait_stored(state, 60, timeout=8)
    assert len(kept) == len(set(kept)) == 60  # every turn once: none lost, none doubled
    stop_cleanly(again, rec)


@pytest.mark.timeout(60)
def test_a_damaged_database_is_reported_moved_aside_and_replaced(
        start: Callable[..., Service], rec: Recorder, state: Path) -> None:
    state.mkdir(parents=True)
    (state / "memory.db").write_bytes(b"\x00garbage, not SQLite\n" * 500)
    svc = start()
    health = rec.wait("system/health/memory", event="error")
    assert "damaged" in health.data["error"] and "moved aside" in health.data["error"]
    assert [p.name for p in state.iterdir() if ".corrupt-" in p.name]
    hear(rec, "a new beginning")
    wait_stored(state, 1)
    assert query(rec, "beginning").data["results"][0]["text"] == "a new beginning"
    stop_cleanly(svc, rec)


def test_bad_settings_exit_2_naming_the_variable(broker: Broker, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for env, variable in (({"TARS_MEMORY_DIR": str(blocker / "sub")}, "TARS_MEMORY_DIR"),
                          ({"TARS_MEMORY_DIR": str(tmp_path / "ok"),
                            "TARS_PERSONA": str(blocker)}, "TARS_PERSONA"),
                          ({"TARS_MEMORY_DIR": str(tmp_path / "ok"),
                            "TARS_MEMORY_MAX_TURNS": "0"}, "TARS_MEMORY_MAX_TURNS")):
        svc = Service("memory", broker, tmp_path, **env)
        assert svc.proc.wait(TIMEOUT) == 2, svc.log()
        assert variable in svc.log()
