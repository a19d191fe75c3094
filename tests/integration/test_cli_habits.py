"""What mosquitto_sub/pub users reach for, in ``tars-mqtt``, against a real mosquitto.

Payload-only and ``-F`` output, ``--retained-only``/``-R``, ``-T``, ``-t``, ``-C``/``-W``,
``pub`` from stdin, a file or lines, ``--json`` on every command that prints, and
``request`` failing on a failed reply.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tars_mqtt import Message, MQTTClient
from tars_mqtt.cli import main
from tests.support import Inbox
from tests.support.cli import no_env_broker, one_error_line, url

__all__ = ["no_env_broker", "url"]  # fixtures used by name
MakeClient = Callable[..., MQTTClient]


def keep(client: MQTTClient, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1, retain=True).wait(5)


def feed_while(command: Callable[[], int], client: MQTTClient, topic: str) -> int:
    """Run ``command`` in a thread, publishing live messages until it returns."""
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(command()))
    runner.start()
    n = 0
    while runner.is_alive() and n < 2000:  # bounded: at most 2000 round trips
        client.publish(topic, b"live %d" % n, qos=1).wait(5)
        n += 1
        runner.join(0.01)
    runner.join(10)
    assert result, "the command did not end"
    return result[0]


def stdin_of(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


# sub ------------------------------------------------------------------------------------
def test_payload_only_is_the_bytes_as_received(url: str, make_client: MakeClient,
                                               capsysbinary: pytest.CaptureFixture[bytes]
                                               ) -> None:
    keep(make_client(), "habit/raw", b"\x00bin\xff")
    assert main(["sub", "-t", "habit/raw", "--payload-only", "-C", "1", "-W", "10"]) == 0
    assert capsysbinary.readouterr().out == b"\x00bin\xff\n"


def test_format_string_and_no_newline(url: str, make_client: MakeClient,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    sender = make_client()
    sender.publish_event("habit/env", "demo.kind", {"n": 1}, retain=True).wait(5)
    assert main(["sub", "habit/env", "-F", "%t|%r|%e|%s|%d", "-C", "1", "-W", "10"]) == 0
    assert capsys.readouterr().out == f'habit/env|1|demo.kind|{sender.config.source}|{{"n":1}}\n'
    assert main(["sub", "habit/env", "-F", "[%e]", "-N", "-C", "1", "-W", "10"]) == 0
    assert capsys.readouterr().out == "[demo.kind]"


def test_retained_only_shows_what_is_kept_and_ends(url: str, make_client: MakeClient,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    sender = make_client()
    keep(sender, "kept/a", b"A")
    keep(sender, "kept/b", b"B")
    code = feed_while(lambda: main(["sub", "kept/#", "--retained-only", "--payload-only",
                                    "-W", "20"]), sender, "kept/live")
    assert code == 0
    assert sorted(capsys.readouterr().out.splitlines()) == ["A", "B"]
    assert main(["sub", "empty/#", "--retained-only", "-W", "20"]) == 0  # ends when quiet
    assert capsys.readouterr().out == ""


def test_no_retained_skips_what_is_kept(url: str, make_client: MakeClient,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    sender = make_client()
    keep(sender, "fresh/t", b"old")
    code = feed_while(lambda: main(["sub", "fresh/t", "-R", "--payload-only", "-C", "1",
                                    "-W", "20"]), sender, "fresh/t")
    assert code == 0
    assert capsys.readouterr().out.startswith("live ")


def test_filter_out(url: str, make_client: MakeClient,
                    capsys: pytest.CaptureFixture[str]) -> None:
    sender = make_client()
    for topic in ("robot/a", "robot/noise/1", "robot/noise/2", "robot/b"):
        keep(sender, topic, topic.encode())
    assert main(["sub", "robot/#", "-T", "robot/noise/#", "--retained-only", "-F", "%t",
                 "-W", "20"]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == ["robot/a", "robot/b"]


def test_count_and_timeout_short_flags(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sub", "quiet/#", "-C", "2", "-W", "0.3"]) == 1
    assert "0 of 2 messages within 0.3 s" in one_error_line(capsys.readouterr().err)


# pub ------------------------------------------------------------------------------------
@pytest.fixture
def inbox(make_client: MakeClient) -> Inbox:
    box = Inbox()
    make_client().subscribe("in/#", box, qos=1, raw=True)
    return box


def test_pub_stdin_is_one_raw_message(url: str, inbox: Inbox,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    stdin_of(monkeypatch, b"two\nlines\n")
    assert main(["pub", "-t", "in/stdin", "-s"]) == 0
    assert inbox.wait_count(1, 5)
    assert (inbox.messages[0].payload, inbox.messages[0].envelope) == (b"two\nlines\n", None)


def test_pub_stdin_with_type_is_an_envelope(url: str, inbox: Inbox,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    stdin_of(monkeypatch, b'{"text": "hi"}\n')
    assert main(["pub", "in/say", "--type", "demo.say", "--stdin"]) == 0
    assert inbox.wait_count(1, 5)
    assert (inbox.messages[0].type, inbox.messages[0].data) == ("demo.say", {"text": "hi"})


def test_pub_file(url: str, inbox: Inbox, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    blob, data = tmp_path / "blob.bin", tmp_path / "data.json"
    blob.write_bytes(b"\x00\x01binary")
    data.write_text('{"action": "bow"}')
    assert main(["pub", "in/file", "-f", str(blob)]) == 0
    assert main(["pub", "in/file", "--file", str(data), "--type", "demo.cmd"]) == 0
    assert main(["pub", "in/file", "-f", str(tmp_path / "none")]) == 2
    assert "--file: cannot read" in one_error_line(capsys.readouterr().err)
    assert inbox.wait_count(2, 5)
    assert inbox.messages[0].payload == b"\x00\x01binary"
    assert (inbox.messages[1].type, inbox.messages[1].data) == ("demo.cmd", {"action": "bow"})


def test_pub_lines_one_message_each_in_order(url: str, inbox: Inbox,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    stdin_of(monkeypatch, b"a\nb\n\nc\n")
    assert main(["pub", "in/lines", "-l", "-q", "1"]) == 0
    stdin_of(monkeypatch, b'{"n": 1}\n{"n": 2}\n[3]\n{"n": 4}\n')
    assert main(["pub", "in/lines", "-l", "--type", "demo.n"]) == 2  # the third is no object
    assert "stdin line 3: must be a JSON object, got list" in one_error_line(
        capsys.readouterr().err)
    assert inbox.wait_count(6, 5)
    assert [m.payload for m in inbox.messages[:4]] == [b"a", b"b", b"", b"c"]
    assert [m.data for m in inbox.messages[4:]] == [{"n": 1}, {"n": 2}]


def test_pub_null_retained_clears(url: str, make_client: MakeClient) -> None:
    keep(make_client(), "in/kept", b"old")
    assert main(["pub", "in/kept", "-n", "-r"]) == 0
    assert main(["sub", "in/kept", "--retained-only", "-W", "20"]) == 0


def test_pub_json_prints_what_was_sent(url: str, inbox: Inbox,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pub", "in/json", "--data", '{"k": "v"}', "--json"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert inbox.wait_count(1, 5)
    envelope = inbox.messages[0].envelope
    assert envelope is not None
    assert sent["envelope"]["id"] == envelope.id
    assert (sent["topic"], sent["qos"], sent["envelope"]["data"]) == ("in/json", 1, {"k": "v"})


# health and request --json, request's exit code -------------------------------------------
def test_health_json_lines(url: str, make_client: MakeClient,
                           capsys: pytest.CaptureFixture[str]) -> None:
    live, stopped = make_client(heartbeat_interval=0.2), make_client()
    stopped.stop()
    assert main(["health", "--json", "--wait", "0.2", "--stale-after", "5"]) == 0
    rows = {r["client"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[live.config.client_id]["healthy"] is True
    assert rows[stopped.config.client_id]["judged"] is False
    assert rows[stopped.config.client_id]["event"] == "shutdown"


def answer_with(client: MakeClient, data: dict[str, object]) -> None:
    server = client()

    def on_request(msg: Message) -> None:
        server.reply(msg, "demo.reply", data)

    server.subscribe("svc/ask", on_request, qos=1)


@pytest.mark.parametrize(("data", "code", "says"), [
    ({"event": "completed"}, 0, None),
    ({"event": "rejected", "error": "unknown action 'fly'"}, 1,
     "the reply says the request failed (event 'rejected': unknown action 'fly')"),
    ({"event": "failed"}, 1, "(event 'failed': -)"),
    ({"reply": "", "error": "model offline"}, 1, "(an error: model offline)"),
])
def test_request_exit_code_follows_the_reply(url: str, make_client: MakeClient,
                                             data: dict[str, object], code: int,
                                             says: str | None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    answer_with(make_client, data)
    assert main(["request", "svc/ask", "--type", "demo.ask", "--json"]) == code
    out, err = capsys.readouterr()
    assert json.loads(out)["envelope"]["data"] == data  # printed either way
    if says is None:
        assert err == ""
    else:
        assert says in one_error_line(err)
