"""Request/reply on the threaded client, against a real mosquitto ."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import ujson
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tars_mqtt import Message, MQTTClient, RequestTimeout
from tars_mqtt.testing import Broker

MakeClient = Callable[..., MQTTClient]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition until it holds or the deadline passes (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def doubler(make_client: MakeClient, topic: str = "svc/double", **fields: Any) -> MQTTClient:
    """A service answering ``{"n": n}`` with ``{"n": 2n}``."""
    service = make_client(start=False, **fields)

    @service.subscribe(topic, qos=1)
    def on_request(msg: Message) -> None:
        service.reply(msg, "double.result", {"n": msg.data["n"] * 2})

    return service.start(timeout=10)


class RawV5:
    """A plain paho MQTT 5 client: no envelopes, only v5 properties."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5)
        self.messages: list[paho.MQTTMessage] = []
        self.got = threading.Event()
        self.on_message: Callable[[paho.MQTTMessage], None] | None = None
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.messages.append(msg)
        if self.on_message is not None:
            self.on_message(msg)
        self.got.set()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5), "no SUBACK for the raw client"

    def publish(self, topic: str, payload: bytes, correlation: bytes | None = None,
                response_topic: str | None = None) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if correlation is not None:
            props.CorrelationData = correlation
        if response_topic is not None:
            props.ResponseTopic = response_topic
        self.client.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def prop(msg: paho.MQTTMessage, name: str) -> Any:
    """A v5 property of a received message (paho sets them dynamically)."""
    return getattr(msg.properties, name, None)


@pytest.fixture
def raw_v5(broker: Broker) -> Any:
    clients: list[RawV5] = []

    def make(client_id: str = "raw-v5") -> RawV5:
        clients.append(RawV5(broker, client_id))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_round_trip(make_client: MakeClient, protocol: str) -> None:
    doubler(make_client, protocol=protocol)
    client = make_client(protocol=protocol)

    answer = client.request("svc/double", "double.ask", {"n": 21}, timeout=5)

    assert answer.data == {"n": 42}
    assert answer.type == "double.result"
    assert answer.topic == f"system/reply/{client.config.client_id}"
    assert answer.envelope is not None and answer.correlate is not None
    assert len(client._requests.pending) == 0


def test_request_carries_envelope_reply_to_and_v5_properties(
        make_client: MakeClient, raw_v5: Callable[[], RawV5]) -> None:
    raw = raw_v5()
    raw.subscribe("svc/inspect")
    client = make_client()

    with pytest.raises(RequestTimeout):
        client.request("svc/inspect", "inspect.ask", {"q": 1}, timeout=0.5)

    assert raw.got.wait(5)
    msg = raw.messages[0]
    wire = ujson.loads(msg.payload)
    assert wire["reply_to"] == f"system/reply/{client.config.client_id}"
    assert prop(msg, "ResponseTopic") == wire["reply_to"]
    assert prop(msg, "CorrelationData") == wire["id"].encode()


def test_timeout_raises_and_forgets_the_request(make_client: MakeClient) -> None:
    client = make_client()

    started = time.monotonic()
    with pytest.raises(RequestTimeout, match="nobody/home"):
        client.request("nobody/home", "void.ask", {}, timeout=0.3)

    assert time.monotonic() - started >= 0.3
    assert len(client._requests.pending) == 0
    assert isinstance(RequestTimeout("x"), TimeoutError)


def test_fifty_concurrent_requests_from_ten_threads(make_client: MakeClient) -> None:
    doubler(make_client, workers=4)
    client = make_client()
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def ask(thread_no: int) -> None:
        for k in range(5):
            n = thread_no * 100 + k
            try:
                answer = client.request("svc/double", "double.ask", {"n": n}, timeout=10)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                continue
            with lock:
                results[n] = answer.data["n"]

    threads = [threading.Thread(target=ask, args=(t,)) for t in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert len(results) == 50
    assert all(doubled == 2 * n for n, doubled in results.items())
    assert len(client._requests.pending) == 0
    assert client.stats().late_replies == 0


def test_late_reply_is_counted_not_delivered(make_client: MakeClient) -> None:
    held: list[Message] = []
    got_request = threading.Event()
    slow = make_client()

    def hold(msg: Message) -> None:
        if msg.data.get("hold"):
            held.append(msg)
            got_request.set()
        else:
            slow.reply(msg, "slow.result", {"answer": msg.data["n"]})

    slow.subscribe("svc/slow", hold, qos=1)
    client = make_client()

    with pytest.raises(RequestTimeout):
        client.request("svc/slow", "slow.ask", {"hold": True, "n": 1}, timeout=0.3)
    assert got_request.wait(5)
    slow.reply(held[0], "slow.result", {"answer": "too late"}).wait(5)

    assert wait_until(lambda: client.stats().late_replies == 1)
    answer = client.request("svc/slow", "slow.ask", {"n": 2}, timeout=5)
    assert answer.data == {"answer": 2}
    assert client.stats().late_replies == 1
    assert len(client._requests.pending) == 0


def test_handlers_can_make_requests_with_a_single_worker(make_client: MakeClient) -> None:
    """Replies are matched on the network thread, so a busy pool cannot starve them."""
    doubler(make_client)
    answers: list[Any] = []
    done = threading.Event()
    client = make_client(start=False, workers=1)

    @client.subscribe("trigger/go", qos=1)
    def on_trigger(msg: Message) -> None:
        answers.append(client.request("svc/double", "double.ask", {"n": 4}, timeout=5).data)
        done.set()

    client.start(timeout=10)
    client.publish_event("trigger/go", "trigger", {}).wait(5)

    assert done.wait(10)
    assert answers == [{"n": 8}]


def test_raw_v5_client_answers_with_properties_only(
        make_client: MakeClient, raw_v5: Callable[[], RawV5]) -> None:
    raw = raw_v5()

    def answer(msg: paho.MQTTMessage) -> None:
        raw.client.publish(prop(msg, "ResponseTopic"), b"pong", qos=1,
                           properties=_reply_props(prop(msg, "CorrelationData")))

    raw.on_message = answer
    raw.subscribe("svc/raw")
    client = make_client()

    reply = client.request("svc/raw", "raw.ping", {}, timeout=5)

    assert reply.payload == b"pong"
    assert reply.envelope is None
    assert reply.correlate is not None and len(reply.correlate) == 32
    assert client.stats().late_replies == 0


def _reply_props(correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.CorrelationData = correlation
    return props


def test_reply_answers_a_raw_v5_request(make_client: MakeClient,
                                       raw_v5: Callable[[], RawV5]) -> None:
    service = make_client(start=False)

    @service.subscribe("svc/ask", qos=1, raw=True)
    def on_ask(msg: Message) -> None:
        service.reply(msg, "ask.result", {"echo": msg.text})

    service.start(timeout=10)
    raw = raw_v5()
    raw.subscribe("raw/replies")

    raw.publish("svc/ask", b"hello", correlation=b"req-0001", response_topic="raw/replies")

    assert raw.got.wait(5), "no reply reached the raw client"
    msg = raw.messages[0]
    assert prop(msg, "CorrelationData") == b"req-0001"
    wire = ujson.loads(msg.payload)
    assert wire["correlate"] == "req-0001"
    assert wire["data"] == {"echo": "hello"}


def test_reply_refuses_a_message_that_is_no_request(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="no reply_to"):
        client.reply(Message(topic="a/b", payload=b"{}"), "x.result", {})


def test_example_runs(broker: Broker) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    env["MQTT_URL"] = broker.url
    example = Path(__file__).parents[2] / "examples" / "request_reply.py"
    out = subprocess.run([sys.executable, str(example)], env=env, capture_output=True,
                         text=True, timeout=45, check=False)
    assert out.returncode == 0, out.stderr
    assert "llm says: HELLO TARS" in out.stdout


def test_a_named_reply_topic_pairs_llm_request_with_llm_response(
        make_client: MakeClient) -> None:
    """The topic table: llm/request is answered on llm/response, matched by correlate.

    One answerer uses ``reply()`` (the request's ``reply_to`` is llm/response); the other
    follows the topic table by hand, publishing on llm/response with ``correlate``.
    """
    by_reply = make_client(start=False)

    @by_reply.subscribe("llm/request", qos=1)
    def answer(msg: Message) -> None:
        if msg.data["text"] == "via reply":
            by_reply.reply(msg, "llm.response", {"reply": "one"})

    by_reply.start(timeout=10)
    by_hand = make_client(start=False)

    @by_hand.subscribe("llm/request", qos=1)
    def answer_by_hand(msg: Message) -> None:
        if msg.data["text"] == "by hand":
            assert msg.envelope is not None
            by_hand.publish_event("llm/response", "llm.response", {"reply": "two"},
                                  correlate=msg.envelope.id)

    by_hand.start(timeout=10)
    seen_on_response: list[Message] = []
    router = make_client()
    router.subscribe("llm/response", seen_on_response.append, qos=1)  # a user handler too
    first = router.request("llm/request", "llm.request", {"text": "via reply"}, timeout=5,
                           reply_topic="llm/response")
    second = router.request("llm/request", "llm.request", {"text": "by hand"}, timeout=5,
                            reply_topic="llm/response")
    assert (first.topic, first.data) == ("llm/response", {"reply": "one"})
    assert (second.topic, second.data) == ("llm/response", {"reply": "two"})
    assert wait_until(lambda: len(seen_on_response) == 2)  # the route is shared, not stolen
    assert len(router._requests.pending) == 0
