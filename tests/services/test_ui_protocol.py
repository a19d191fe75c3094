"""The web view's WebSocket protocol and fan-out, without a network: frames in, frames out.

The real WebSocket (and a page that never reads) is in tests/integration/test_ui_socket.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from services.ui.hub import Connection, Hub
from services.ui.protocol import MAX_TEXT, MOVES, BadFrame, Budget, Command, parse
from services.ui.settings import UISettings, is_loopback
from tars_mqtt import ConfigError


# parse -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("frame", "command"), [
    ('{"op": "stop", "id": "c1"}', Command("stop", "c1")),
    ('{"op": "wake"}', Command("wake")),
    ('{"op": "say", "id": "c2", "text": "  hello \\n there "}',
     Command("say", "c2", text="hello there")),
    ('{"op": "move", "id": "c3", "action": "wave", "speed": 2}',
     Command("move", "c3", action="wave", speed=2.0)),
    ('{"op": "filter", "topic": "movement/#", "heartbeats": true}',
     Command("filter", topic="movement/#", heartbeats=True)),
    ('{"op": "filter", "topic": " "}', Command("filter", topic="#")),
])
def test_parse_accepts_each_command(frame: str, command: Command) -> None:
    assert parse(frame) == command


@pytest.mark.parametrize(("frame", "says"), [
    ("", "not JSON"),
    ("{nope", "not JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ('"stop"', "must be a JSON object, got str"),
    ('{"op": "launch"}', "unknown op 'launch'; known: stop, wake, say, move, filter"),
    ('{"op": 7}', "unknown op 'int'"),
    ('{"id": "c1"}', "unknown op 'NoneType'"),
    ('{"op": "stop", "id": 5}', "'id' must be a string"),
    ('{"op": "stop", "id": ""}', "'id' must be a string of 1..64"),
    ('{"op": "say", "text": "   "}', "say needs a non-empty 'text'"),
    ('{"op": "say", "text": ["a"]}', "say needs a non-empty 'text'"),
    ('{"op": "say", "text": "%s"}' % ("a" * (MAX_TEXT + 1)), "at most 500"),
    ('{"op": "move", "action": "self_destruct"}', "move: unknown 'action'"),
    ('{"op": "move", "action": "pose"}', "move: unknown 'action'"),  # needs angles
    ('{"op": "move", "action": "wave", "speed": 9}', "'speed' must be a number in 0.1..3"),
    ('{"op": "move", "action": "wave", "speed": true}', "'speed' must be a number"),
    ('{"op": "move", "action": "wave", "speed": NaN}', "'speed' must be a number"),
    ('{"op": "filter", "topic": "a/#/b"}', "'#' must be a whole, last level"),
    ('{"op": "filter", "topic": "a/b+"}', "'+' must be a whole level"),
    ('{"op": "filter", "topic": "#", "heartbeats": "yes"}', "a boolean 'heartbeats'"),
    ('{"op": "say", "text": "hi \\ud800"}', "'text' is not valid UTF-8 text"),
    ('{"op": "stop", "id": "\\udfff"}', "'id' is not valid UTF-8 text"),
    ('{"op": "stop", "\\ud800": 1}', "'\\\\ud800' is not valid UTF-8 text"),
])
def test_parse_refuses_bad_frames_naming_what_is_wrong(frame: str, says: str) -> None:
    with pytest.raises(BadFrame) as caught:
        parse(frame)
    assert says in str(caught.value)


def test_the_motions_offered_are_the_hardware_motions() -> None:
    assert "wave" in MOVES and "reset" in MOVES and "pose" not in MOVES


def test_budget_allows_bursts_then_the_rate() -> None:
    budget = Budget(0.0, rate=2.0, burst=3.0)
    assert [budget.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not budget.take(0.25) and budget.take(0.5)  # 2 a second: one more after 0.5 s
    assert [budget.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped


# Connection and Hub -----------------------------------------------------------------------
def run(coro: Coroutine[Any, Any, None], timeout: float = 10.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def test_a_page_that_never_reads_costs_the_bus_nothing_and_drops_are_counted() -> None:
    async def scenario() -> None:
        stuck = asyncio.Event()
        sent: list[str] = []

        async def never_returns(frame: str) -> None:
            sent.append(frame)
            await stuck.wait()  # a socket whose peer stopped reading

        conn = Connection(never_returns, lambda c: '{"kind": "hello"}', limit=10,
                          send_timeout=0.2)
        hub = Hub()
        hub.add(conn)
        pump = asyncio.create_task(conn.pump())
        await asyncio.sleep(0)  # the pump takes the snapshot and blocks on it
        for i in range(1000):
            hub.broadcast({"kind": "msg", "n": i})  # returns at once, every time
        assert conn.queued <= 10
        assert conn.dropped == 1000 - conn.queued and hub.dropped == conn.dropped
        with pytest.raises(TimeoutError):
            await pump  # the stuck send is given up on: the page gets disconnected
        assert sent == ['{"kind": "hello"}']
        hub.remove(conn)
        assert hub.connections == set() and hub.dropped == conn.dropped
    run(scenario())


def test_after_drops_a_slow_page_gets_a_fresh_snapshot_then_new_frames_in_order() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        sent: list[str] = []

        async def slow(frame: str) -> None:
            await gate.wait()
            sent.append(frame)

        snapshots = iter(["snap-1", "snap-2"])
        conn = Connection(slow, lambda c: next(snapshots), limit=3)
        pump = asyncio.create_task(conn.pump())
        await asyncio.sleep(0)
        for frame in ("a", "b", "c", "d", "e", "f"):  # d overflows: a-d dropped, then e, f
            conn.offer(frame)
        assert conn.dropped == 4
        gate.set()
        while len(sent) < 4:
            await asyncio.sleep(0.01)
        assert sent == ["snap-1", "snap-2", "e", "f"]
        conn.close()
        await pump
    run(scenario())


def test_traffic_goes_only_to_pages_whose_filter_matches_and_is_encoded_once() -> None:
    async def scenario() -> None:
        hub = Hub()
        pages = [Connection(_noop, lambda c: "", limit=10) for _ in range(3)]
        for page in pages:
            hub.add(page)
        pages[0].topic_filter = "wake/#"
        pages[1].topic_filter = "movement/#"
        pages[2].heartbeats = True
        made = []

        def make() -> dict[str, object]:
            made.append(1)
            return {"kind": "msg"}

        hub.traffic("wake/event", make)
        hub.traffic("system/keepalive/wake", make)
        hub.traffic("movement/status", make)
        assert [p.queued for p in pages] == [1, 1, 3]
        pages[2].topic_filter = "wake/+"
        hub.traffic("llm/request", lambda: pytest.fail("made for nobody"))
        assert len(made) == 3
        assert json.loads(pages[0]._queue[0]) == {"kind": "msg"}
    run(scenario())


async def _noop(frame: str) -> None:
    return None


# Settings -------------------------------------------------------------------------------
def test_loopback_is_the_default_and_anything_else_needs_a_token() -> None:
    assert UISettings.from_env({}).bind == "127.0.0.1"
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("tars.local")
    with pytest.raises(ConfigError, match="TARS_UI_BIND='0.0.0.0' lets other machines"):
        UISettings.from_env({"TARS_UI_BIND": "0.0.0.0"})


def test_the_token_comes_from_a_file_and_never_shows(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret-s3cret-s3cret\n")
    settings = UISettings.from_env({"TARS_UI_BIND": "0.0.0.0", "TARS_UI_TOKEN_FILE": str(path)})
    assert settings.token == "s3cret-s3cret-s3cret"
    assert "s3cret" not in repr(settings)
    path.write_text("short-s3cret\n")
    with pytest.raises(ConfigError) as caught:
        UISettings.from_env({"TARS_UI_TOKEN_FILE": str(path)})
    assert "shorter than 16" in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="TARS_UI_TOKEN_FILE=.*cannot be read"):
        UISettings.from_env({"TARS_UI_TOKEN_FILE": str(path) + ".missing"})


@pytest.mark.parametrize(("env", "says"), [
    ({"TARS_UI_PORT": "http"}, "TARS_UI_PORT: must be a whole number, got 'http'"),
    ({"TARS_UI_PORT": "70000"}, "TARS_UI_PORT: must be from 1 to 65535, got '70000'"),
    ({"TARS_UI_QUEUE": "2"}, "TARS_UI_QUEUE: must be from 8 to 100000, got '2'"),
    ({"TARS_UI_BIND": "\udcff"}, "TARS_UI_BIND: is not valid UTF-8"),
    ({"TARS_UI_TLS_CERT": "/nonexistent"}, "go together"),
    ({"TARS_UI_TLS_CERT": "/nonexistent", "TARS_UI_TLS_KEY": "/x"},
     "TARS_UI_TLS_CERT='/nonexistent' is not a file"),
])
def test_bad_settings_fail_naming_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        UISettings.from_env(env)
    assert says in str(caught.value)
