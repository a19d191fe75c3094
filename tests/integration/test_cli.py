"""The ``tars-mqtt`` command against a real mosquitto: what it sends, prints and exits with.

Commands run in-process through ``main([...])`` (stdout and stderr captured), and the
console script runs once as a subprocess for the entry point, ``--watch`` and signals.
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tars_mqtt import Message, MQTTClient
from tars_mqtt.cli import main
from tars_mqtt.cli._health import HealthBook, age
from tars_mqtt.cli._show import message_line, safe
from tars_mqtt.envelope import Envelope, decode_envelope
from tars_mqtt.testing import Broker, free_port
from tests.support.cli import no_env_broker, one_error_line, url

__all__ = ["no_env_broker", "url"]  # fixtures used by name

CLI = shutil.which("tars-mqtt", path=str(Path(sys.executable).parent)) or "tars-mqtt"


def collect(client: MQTTClient, topic_filter: str) -> queue.Queue[Message]:
    received: queue.Queue[Message] = queue.Queue()
    client.subscribe(topic_filter, received.put, qos=1, raw=True)
    return received


# pub ------------------------------------------------------------------------------------
def test_pub_sends_an_envelope_from_the_cli(url: str, make_client: Callable[..., MQTTClient],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    received = collect(make_client(), "cli/pub")
    code = main(["pub", "cli/pub", "--type", "cli.test", "--data", '{"n": 1, "s": "ü"}'])
    assert code == 0, capsys.readouterr().err
    msg = received.get(timeout=5)
    assert msg.envelope is not None
    assert (msg.envelope.type, msg.data, msg.qos) == ("cli.test", {"n": 1, "s": "ü"}, 1)
    assert msg.envelope.source.startswith("tars-mqtt-cli-")


def test_pub_raw_retained_then_cleared(url: str, make_client: Callable[..., MQTTClient]) -> None:
    assert main(["pub", "cli/raw", "--raw", "plain text", "--retain", "--qos", "0"]) == 0
    first = collect(make_client(), "cli/raw").get(timeout=5)
    assert (first.payload, first.envelope, first.retain) == (b"plain text", None, True)
    assert main(["pub", "cli/raw", "--raw", "", "--retain"]) == 0  # clears the retained one
    later = make_client()
    received = collect(later, "cli/#")
    later.publish("cli/marker", b"m", qos=1).wait(5)
    assert received.get(timeout=5).topic == "cli/marker", "the retained message survived"


@pytest.mark.parametrize(("argv", "says"), [
    (["pub", "a/b", "--data", "{x"], "--data: not valid JSON"),
    (["pub", "a/b", "--data", "[1, 2]"], "--data: must be a JSON object, got list"),
    (["pub", "a/b", "--qos", "3"], "--qos: invalid choice"),
    (["pub", "a/#"], "must not contain wildcards"),
    (["pub", "a/b", "--raw", "x", "--type", "t"], "--type describes an envelope"),
    (["pub", "a/b", "--data", "{}", "--raw", "x"], "not allowed with argument"),
    (["pub", "a/b", "--url", "foo://host"], "--url: scheme must be mqtt"),
    (["pub", "a/b", "--url", "mqtt://h:99999"], "--url: not a valid URL"),
    (["sub", "a/#/b"], "'#' must be a whole, last level"),
    (["sub"], "required: FILTER"),
    (["request", "a/b", "--data", "{}"], "required: --type"),
    (["request", "a/b", "--type", "t", "--timeout", "-1"], "must be positive"),
    (["health", "--stale-after", "0"], "must be positive"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], says: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert says in one_error_line(err)
    assert out == ""


def test_bad_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MQTT_KEEPALIVE", "soon")
    assert main(["health"]) == 2
    assert "MQTT_KEEPALIVE: must be a whole number, got 'soon'" in one_error_line(
        capsys.readouterr().err)


def test_no_broker_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    assert main(["pub", "a/b", "--url", f"mqtt://127.0.0.1:{port}"]) == 2
    assert f"127.0.0.1:{port} is unreachable" in one_error_line(capsys.readouterr().err)


# sub ------------------------------------------------------------------------------------
def retain_samples(client: MQTTClient) -> None:
    client.publish_event("show/env", "demo.kind", {"text": "hi"}, retain=True).wait(5)
    client.publish("show/json", [1, 2], qos=1, retain=True).wait(5)
    client.publish("show/raw", b"\x1b[2Jbad\xff", qos=1, retain=True).wait(5)


def test_sub_prints_one_safe_line_per_message(url: str, make_client: Callable[..., MQTTClient],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    sender = make_client()
    retain_samples(sender)
    assert main(["sub", "show/#", "--count", "3", "--timeout", "10"]) == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert len(lines) == 3, lines
    env, js, raw = lines
    assert env.split("  ")[1:] == ["show/env (retained)", "demo.kind", sender.config.source,
                                   '{"text":"hi"}']
    assert js.endswith("show/json (retained)  -  -  json [1,2]")
    assert raw.endswith("show/raw (retained)  -  -  raw \\x1b[2Jbad\\xff")
    assert "\x1b" not in raw


def test_sub_shows_an_envelope_once_on_overlapping_filters(
        url: str, make_client: Callable[..., MQTTClient],
        capsys: pytest.CaptureFixture[str]) -> None:
    sender = make_client()
    for topic in ("twice/a", "twice/b"):
        sender.publish_event(topic, "demo.kind", {}, retain=True).wait(5)
    assert main(["sub", "twice/#", "twice/+", "--count", "3", "--timeout", "0.5"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split("  ")[1] for line in lines) == ["twice/a (retained)",
                                                           "twice/b (retained)"]


def test_sub_json_keeps_everything(url: str, make_client: Callable[..., MQTTClient],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    retain_samples(make_client())
    assert main(["sub", "show/#", "--json", "--count", "3", "--timeout", "10"]) == 0
    by_topic = {d["topic"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert by_topic["show/env"]["envelope"]["data"] == {"text": "hi"}
    assert by_topic["show/env"]["retain"] is True
    assert by_topic["show/json"]["json"] == [1, 2]
    assert by_topic["show/raw"]["base64"] == "G1sySmJhZP8="


def test_sub_exits_1_when_too_few_messages_arrive(url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sub", "quiet/#", "--count", "1", "--timeout", "0.3"]) == 1
    assert "0 of 1 messages within 0.3 s" in one_error_line(capsys.readouterr().err)


def test_message_line_shortens_and_escapes() -> None:
    payload = Envelope(type="t\u202e", source="s", data={"k": "v" * 500}).encode()
    envelope, _, _ = decode_envelope(payload)
    line = message_line(Message("a/\x07", payload, envelope=envelope,
                                data=envelope.data if envelope else None))
    assert "a/\\x07  t\\u202e  s  " in line
    assert line.endswith("…") and len(line) < 200
    assert safe("fine ü") == "fine ü"


# request --------------------------------------------------------------------------------
def test_request_prints_the_reply(url: str, make_client: Callable[..., MQTTClient],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    server = make_client()
    server.subscribe("svc/echo", lambda m: server.reply(m, "echo.reply", {"echo": m.data}),
                     qos=1)
    assert main(["request", "svc/echo", "--type", "echo.request", "--data", '{"x": 1}',
                 "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["envelope"]["type"] == "echo.reply"
    assert reply["envelope"]["data"] == {"echo": {"x": 1}}
    assert reply["envelope"]["correlate"]


def test_request_without_reply_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["request", "svc/nobody", "--type", "q", "--timeout", "0.3"]) == 1
    assert "no reply to request on 'svc/nobody'" in one_error_line(capsys.readouterr().err)


# health ---------------------------------------------------------------------------------
def health(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str]]:
    """Run ``health`` and return its exit code and the status column per client."""
    code = main(["health", "--wait", "0.2", *argv])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[1:]]
    return code, {row[0]: " ".join(row[5:]) for row in rows if len(row) > 5}


def test_health_of_a_live_client_is_ok(url: str, make_client: Callable[..., MQTTClient],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    live = make_client(heartbeat_interval=0.2)
    code, status = health(capsys, "--stale-after", "5")
    assert (code, status) == (0, {live.config.client_id: "ok"})


def test_health_leaves_out_clients_that_shut_down_cleanly(
        url: str, make_client: Callable[..., MQTTClient],
        capsys: pytest.CaptureFixture[str]) -> None:
    live, stopped = make_client(heartbeat_interval=0.2), make_client(heartbeat_interval=0.2)
    stopped.stop()  # its retained health now says "shutdown"
    assert main(["health", "--wait", "0.2", "--stale-after", "5"]) == 0
    out = capsys.readouterr().out
    assert f"1 stopped cleanly, not judged; --all shows them: {stopped.config.client_id}" in out
    code, status = health(capsys, "--stale-after", "5", "--all")
    assert code == 1
    assert status == {live.config.client_id: "ok",
                      stopped.config.client_id: "not ok: shutdown"}
    # named, a stopped client is judged: it is not running
    assert health(capsys, "--stale-after", "5", stopped.config.client_id)[0] == 1
    assert health(capsys, "--stale-after", "5", live.config.client_id)[0] == 0


def test_health_of_only_stopped_clients_fails(url: str, make_client: Callable[..., MQTTClient],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    make_client().stop()
    assert main(["health", "--wait", "0.2"]) == 1
    assert "no running client publishes health" in capsys.readouterr().out


def test_health_of_a_killed_client_fails(url: str, make_client: Callable[..., MQTTClient],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    watcher = make_client()
    seen = collect(watcher, "system/health/victim")
    script = ("import sys; from tars_mqtt import MQTTClient, MQTTConfig;"
              f"MQTTClient(MQTTConfig(url={url!r}, client_id='victim')).start();"
              "print('up', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        assert seen.get(timeout=5).data["event"] == "ready"
        proc.kill()
        assert seen.get(timeout=5).data["event"] == "offline"  # the broker sent the will
    finally:
        proc.kill()
        proc.wait(10)
    code, status = health(capsys, "victim")
    assert (code, status) == (1, {"victim": "not ok: offline"})


def test_health_without_heartbeat_is_stale(url: str, make_client: Callable[..., MQTTClient],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    silent = make_client(enable_heartbeat=False)
    code, status = health(capsys, "--stale-after", "0.4")
    assert (code, status) == (1, {silent.config.client_id: "stale: no heartbeat in 400ms"})


def test_health_with_nothing_to_report_fails(url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--wait", "0.1"]) == 1
    assert "no running client publishes health" in capsys.readouterr().out
    code, status = health(capsys, "ghost")
    assert (code, status) == (1, {"ghost": "missing: no health, no heartbeat"})


def test_health_book_judges_heartbeat_age() -> None:
    book = HealthBook(stale_after=10.0, since=100.0)
    ready = Envelope(type="system.health", source="m", data={"ok": True, "event": "ready"},
                     ts=1000.0)
    book.add(Message("system/health/m", ready.encode(), envelope=ready), received=100.0)
    beat = Envelope(type="system.heartbeat", source="m", data={"ok": True})
    assert book.rows(105.0, 1005.0)[0].waiting
    book.add(Message("system/keepalive/m", beat.encode(), envelope=beat), received=106.0)
    row = book.rows(115.0, 1015.0)[0]
    assert (row.status, row.healthy, row.health_age, row.beat_age) == ("ok", True, 15.0, 9.0)
    assert book.rows(117.0, 1017.0)[0].status == "stale: last heartbeat 11.0s ago"
    assert [age(s) for s in (0.25, 75, 7300, 200000)] == ["250ms", "1m15s", "2h01m", "2d07h"]


# the console script ------------------------------------------------------------------------
@pytest.fixture
def watching(broker: Broker) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([CLI, "health", "--watch", "--interval", "0.2", "--url", broker.url,
                             "--wait", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    yield proc
    proc.kill()
    proc.wait(10)


def test_console_script_watches_until_interrupted(
        make_client: Callable[..., MQTTClient], watching: subprocess.Popen[str]) -> None:
    live = make_client(heartbeat_interval=0.2)
    assert watching.stdout is not None
    found = threading.Event()

    def read() -> None:
        for line in watching.stdout or ():
            if line.startswith(live.config.client_id) and line.rstrip().endswith("  ok"):
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert found.wait(15), "the watched table never showed the live client as ok"
    watching.send_signal(signal.SIGINT)
    assert watching.wait(10) == 0  # the last table was all ok
    assert watching.stderr is not None and watching.stderr.read() == ""
