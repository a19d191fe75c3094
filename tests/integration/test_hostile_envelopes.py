"""What any login may send to any topic it can write: none of it kills or deafens a client.

Each payload below once raised on paho's network thread (which ended it for good: no
reconnect, no more messages) or inside a worker before the handler ran. Now each is a
decode error: counted, logged, and handed to the handler raw; the client serves on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tars_mqtt import Message, MQTTClient
from tests.tars_mqtt.support import WAIT, Collector, wait_until

MakeClient = Callable[..., MQTTClient]

HUGE = "9" * 400  # no float holds it: float() raises OverflowError


def envelope(ts: str = "1700000000.5", data: str = "{}", **extra: str) -> str:
    """An envelope written by hand, so it can hold what no JSON encoder writes.

    Surrogate escapes (``"\udced"``) stand for raw bytes: see ``payload``.
    """
    fields = {"id": '"x1"', "type": '"t.x"', "ts": ts, "source": '"mallory"', "data": data}
    fields.update(extra)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


def payload(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# (name, JSON text, a word of the decode error)
HOSTILE: list[tuple[str, str, str]] = [
    ("ts_400_digits", envelope(ts=HUGE), "field 'ts'"),
    ("speed_400_digits", envelope(data=f'{{"speed": {HUGE}}}'), "field 'data.speed'"),
    ("angle_1e400", envelope(data='{"pose": {"hip": 1e400}}'), "field 'data.pose.hip'"),
    ("nan", envelope(data='{"speed": NaN}'), "not a finite number"),
    ("infinity", envelope(ts="-Infinity"), "not a finite number"),
    ("lone_surrogate_escape", envelope(id='"\\ud800"'), "not valid UTF-8"),
    ("lone_surrogate_bytes", envelope(data='{"text": "\udced\udca0\udc80"}'), "not valid UTF-8"),
    ("deep_nesting", envelope(data='{"a": ' + "[" * 2000 + "]" * 2000 + "}"), "not JSON"),
]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_hostile_envelopes_reach_handlers_raw_as_decode_errors(
        make_client: MakeClient, protocol: str) -> None:
    client = make_client(protocol=protocol)
    mallory = make_client(protocol=protocol)
    got = Collector()
    client.subscribe("hostile/#", got, qos=1)
    for name, raw, _ in HOSTILE:
        mallory.publish(f"hostile/{name}", payload(raw), qos=1).wait(WAIT)
    mallory.publish_event("hostile/valid", "t.after", {"still": "alive"}).wait(WAIT)
    assert got.wait_for(len(HOSTILE) + 1), f"only {got.topics} arrived"
    by_topic = {m.topic: m for m in got.messages}
    for name, raw, why in HOSTILE:
        msg = by_topic[f"hostile/{name}"]
        assert msg.envelope is None and msg.data is None, name
        assert msg.decode_error is not None and why in msg.decode_error, (name, msg.decode_error)
        assert msg.payload == payload(raw)
    assert by_topic["hostile/valid"].data == {"still": "alive"}
    assert wait_until(lambda: client.stats().dispatched == len(HOSTILE) + 1)
    stats = client.stats()
    assert (stats.decode_errors, stats.handler_errors, stats.callback_errors) == (
        len(HOSTILE), 0, 0)
    assert client.is_connected and client.liveness_problem() is None


@pytest.mark.parametrize("reply_topic", [None, "llm/response"])
def test_a_poisoned_reply_does_not_deafen_the_requester(
        make_client: MakeClient, reply_topic: str | None) -> None:
    """Reply topics are routed on paho's network thread: writable by every login, they are
    where one 400-digit ``ts`` used to end that thread, and with it the client."""
    server = make_client()

    def answer(msg: Message) -> None:
        server.reply(msg, "svc.answer", {"n": msg.data["n"]})

    server.subscribe("svc/ask", answer, qos=1)
    client = make_client()
    assert client.request("svc/ask", "svc.ask", {"n": 1}, reply_topic=reply_topic).data == {
        "n": 1}
    target = reply_topic or f"system/reply/{client.config.client_id}"
    mallory = make_client()
    for _, raw, _ in HOSTILE:
        mallory.publish(target, payload(raw), qos=1).wait(WAIT)
    assert wait_until(lambda: client.stats().decode_errors == len(HOSTILE))
    # Still reading, still answered: the next request works as the first did.
    assert client.request("svc/ask", "svc.ask", {"n": 2}, reply_topic=reply_topic,
                          timeout=WAIT).data == {"n": 2}
    assert client.stats().callback_errors == 0 and client.liveness_problem() is None


def test_a_wildcard_reply_to_is_refused_when_answering(make_client: MakeClient) -> None:
    """``reply_to`` is the sender's word: kept as sent, and refused, by name, by reply()."""
    client = make_client()
    got = Collector()
    client.subscribe("hostile/ask", got, qos=1)
    make_client().publish("hostile/ask", payload(envelope(reply_to='"bad/+/topic"')),
                          qos=1).wait(WAIT)
    assert got.wait_for(1)
    request = got.messages[0]
    assert request.envelope is not None and request.reply_to == "bad/+/topic"
    with pytest.raises(ValueError, match="'bad/\\+/topic' must not contain wildcards"):
        client.reply(request, "t.answer", {})
    assert client.liveness_problem() is None


def test_routing_that_raises_is_counted_and_the_client_serves_on(
        make_client: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard around paho's callbacks, shown by making the routing itself fail."""
    client = make_client()
    got = Collector()
    client.subscribe("guard/#", got, qos=1)
    real_route = client._routing.route

    def route(inbound: Any, sub_ids: list[int] | None) -> Any:
        if inbound.topic == "guard/boom":
            raise RuntimeError("routing failed on purpose")
        return real_route(inbound, sub_ids)

    monkeypatch.setattr(client._routing, "route", route)
    sender = make_client()
    sender.publish("guard/boom", b"1", qos=1).wait(WAIT)
    sender.publish("guard/after", b"2", qos=1).wait(WAIT)
    assert got.wait_for(1) and got.topics == ["guard/after"]
    assert wait_until(lambda: client.stats().callback_errors == 1)
    assert client.is_connected and client.liveness_problem() is None
    # The message routing choked on was acknowledged: a broker that still held it in
    # flight would have no room left once its window filled. Nothing else comes back.
    monkeypatch.setattr(client._routing, "route", real_route)
    sender.publish("guard/last", b"3", qos=1).wait(WAIT)
    assert got.wait_for(2) and got.topics == ["guard/after", "guard/last"]


def test_liveness_says_so_when_paho_thread_dies_anyway(
        make_client: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault inside paho itself, outside every callback, still ends its thread."""
    client = make_client()
    died = threading.Event()

    def broken(*args: Any) -> Any:
        died.set()
        raise RuntimeError("paho failed on purpose")

    monkeypatch.setattr(client.paho, "_handle_publish", broken)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # expected: keep quiet
    make_client().publish(f"system/keepalive/{client.config.client_id}", b"x", qos=0)
    assert died.wait(WAIT)
    assert wait_until(lambda: client.liveness_problem() is not None)
    assert "network thread has died" in str(client.liveness_problem())


def test_unsendable_data_and_reply_topics_are_refused_before_sending(
        make_client: MakeClient) -> None:
    client = make_client()
    got = Collector()
    client.subscribe("send/#", got, qos=1)
    with pytest.raises(ValueError, match=r"field 'data.speed'.*not a finite number"):
        client.publish_event("send/x", "t.x", {"speed": float("nan")})
    with pytest.raises(ValueError, match=r"field 'data.pose\[1\]'.*not a finite number"):
        client.publish_event("send/x", "t.x", {"pose": [0.0, float("inf")]})
    with pytest.raises(ValueError, match=r"field 'data.n'.*too large"):
        client.publish_event("send/x", "t.x", {"n": 10**400})
    with pytest.raises(ValueError, match=r"field 'correlate'.*not valid UTF-8"):
        client.reply(Message("q", b"", reply_to="send/x", correlate="\udcff"), "t.x")
    with pytest.raises(ValueError, match="wildcards"):
        client.publish_event("send/x", "t.x", {}, reply_to="bad/+/topic")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        client.publish_event("send/x", "t.x", {}, reply_to="bad/\udcff")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        client.publish("send/x", "text \ud800")
    client.publish_event("send/x", "t.after", {"ok": True}).wait(WAIT)
    assert got.wait_for(1) and [m.type for m in got.messages] == ["t.after"]
