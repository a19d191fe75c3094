"""What runs in the benchmark's child processes: one publisher or one subscriber each.

Every role exists twice, as **raw paho-mqtt** (the baseline) and as **tars_mqtt**, doing
the same work: the publisher builds an envelope-shaped JSON object of about 200 bytes per
message; the subscriber JSON-decodes every payload (paho: ``ujson.loads`` in
``on_message``, the same decoder tars_mqtt uses; tars_mqtt: its own decode before the
handler) and hands the envelope's ``data`` to the same :class:`Recorder`.

Children talk to the parent only through ``multiprocessing`` events and one result queue;
every wait has a deadline, so a lost broker ends a run instead of hanging it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import paho.mqtt.client as paho
import ujson
from paho.mqtt.enums import CallbackAPIVersion

from tars_mqtt import Envelope, Message, MQTTClient, MQTTConfig, PublishHandle

__all__ = ["PubSpec", "Recorder", "SubSpec", "publisher", "read_rss", "subscriber"]

TYPE = "bench.sample"
SIZE = 200  # bytes of JSON per message, envelope included


@dataclass(frozen=True)
class SubSpec:
    variant: str          # "paho" or "tars"
    host: str
    port: int
    topic: str
    qos: int
    expect: int           # messages to wait for (fewer may come: QoS 0 can lose some)
    slow: float = 0.0     # seconds each handler call sleeps (a saturated queue)
    queue_size: int = 1000
    policy: str = "block"
    latency: bool = False  # record publish→handler latency of every message
    probe: bool = False    # wait for one probe message instead (reconnect)
    rss_every: int = 0     # sample RSS every this many received messages (0: never)


@dataclass(frozen=True)
class PubSpec:
    variant: str
    host: str
    port: int
    topic: str
    qos: int
    count: int
    rate: float = 0.0  # messages per second; 0 = as fast as the library goes


@dataclass
class Recorder:
    """Counts messages, their latencies and the subscriber's CPU time and memory."""

    spec: SubSpec
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    cpu_first: float = 0.0
    cpu_last: float = 0.0
    latencies: list[float] = field(default_factory=list)
    probe_at: float = 0.0
    rss: list[tuple[int, int]] = field(default_factory=list)  # (messages, VmRSS kB)
    rss_idle: int = 0  # VmRSS kB once connected and subscribed, before any message

    def on_data(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        if data.get("probe"):
            self.probe_at = self.probe_at or now
            return
        if not self.count:
            self.first, self.cpu_first = now, time.process_time()
        self.count += 1
        self.last = now
        if self.spec.latency:
            self.latencies.append(now - data["sent"])
        if self.spec.slow:
            time.sleep(self.spec.slow)

    def result(self, received: int | None = None) -> dict[str, Any]:
        self.cpu_last = time.process_time()
        mem = read_rss()
        return {"count": self.count if received is None else received, "first": self.first,
                "last": self.last, "cpu": self.cpu_last - self.cpu_first,
                "latencies": self.latencies, "probe_at": self.probe_at, "rss": self.rss,
                "vmrss_kb": mem["VmRSS"], "vmhwm_kb": mem["VmHWM"], "rss_idle": self.rss_idle}


def read_rss() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in kB, from /proc/self/status."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key = line.split(":", 1)[0]
            if key in values:
                values[key] = int(line.split()[1])
    return values


def _paho(client_id: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    client.max_inflight_messages_set(20)  # what tars_mqtt's transport sets
    # tars_mqtt's defaults, for a fair reconnect race (paho types the delays as int)
    client.reconnect_delay_set(0.5, 5)  # type: ignore[arg-type]
    return client


def _tars(spec: SubSpec | PubSpec, client_id: str, **fields: Any) -> MQTTClient:
    return MQTTClient(MQTTConfig(url=f"mqtt://{spec.host}:{spec.port}", client_id=client_id,
                                 **fields))


def _wait(event: Event, timeout: float, what: str) -> None:
    if not event.wait(timeout):
        raise TimeoutError(f"bench: {what} did not happen within {timeout} s")


# Subscriber ------------------------------------------------------------------------------
def subscriber(spec: SubSpec, ready: Event, stop: Event, results: Queue[dict[str, Any]],
               idle: float = 3.0, limit: float = 300.0) -> None:
    """Subscribe, tell ``ready``, record until ``expect`` messages arrived, or ``stop`` is set
    and nothing came for ``idle`` seconds (or ``limit`` passed); put the result."""
    rec = Recorder(spec)
    received: Callable[[], int] = lambda: rec.count  # noqa: E731
    if spec.variant == "paho":
        client = _paho(f"bench-sub-{spec.topic.replace('/', '-')}")
        subscribed = 0

        def on_message(c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
            rec.on_data(ujson.loads(msg.payload)["data"])

        def on_connect(c: paho.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            c.subscribe(spec.topic, spec.qos)  # raw paho: resubscribing is the user's job

        def on_subscribe(c: paho.Client, u: Any, mid: int, codes: Any, props: Any) -> None:
            nonlocal subscribed
            subscribed += 1
            ready.set()

        client.on_message, client.on_connect = on_message, on_connect
        client.on_subscribe = on_subscribe
        client.connect(spec.host, spec.port)
        client.loop_start()
        _wait(ready, 10, "the paho subscription")
    else:
        tars = _tars(spec, f"bench-sub-{spec.topic.replace('/', '-')}",
                     queue_size=spec.queue_size, queue_policy=spec.policy)

        def handler(msg: Message) -> None:
            rec.on_data(msg.data)

        tars.subscribe(spec.topic, handler, qos=spec.qos)
        tars.start()
        if spec.slow:  # the handler sees few messages: count what the client received
            received = lambda: tars.stats().received  # noqa: E731
        ready.set()
    rec.rss_idle = read_rss()["VmRSS"]
    deadline = time.monotonic() + limit
    seen, quiet_since, mark = -1, time.monotonic(), spec.rss_every
    while time.monotonic() < deadline:
        if rec.probe_at if spec.probe else received() >= spec.expect:
            break
        time.sleep(0.05)
        now_seen = received()
        if spec.rss_every and now_seen >= mark:  # memory as the messages go through
            rec.rss.append((now_seen, read_rss()["VmRSS"]))
            mark = (now_seen // spec.rss_every + 1) * spec.rss_every
        if now_seen != seen:
            seen, quiet_since = now_seen, time.monotonic()
        elif stop.is_set() and time.monotonic() - quiet_since > idle:
            break
    result = rec.result(received())
    if spec.variant == "paho":
        client.disconnect()
        client.loop_stop()
    else:
        stats = tars.stats()
        result.update(dropped=stats.dropped, dispatched=stats.dispatched,
                      reconnects=stats.reconnects)
        tars.stop()
    results.put(result)


# Publisher -------------------------------------------------------------------------------
def _padding(size_of: Callable[[str], int]) -> str:
    """The pad that makes one message SIZE bytes; ``size_of(pad)`` is the wire size."""
    return "x" * max(0, SIZE - size_of(""))


def publisher(spec: PubSpec, go: Event, results: Queue[dict[str, Any]]) -> None:
    """Connect, wait for ``go``, publish ``count`` messages (paced at ``rate`` if given)."""
    topic, qos = spec.topic, spec.qos
    if spec.variant == "paho":
        client = _paho(f"bench-pub-{topic.replace('/', '-')}")
        client.connect(spec.host, spec.port)
        client.loop_start()

        def wire(seq: int, pad: str) -> bytes:
            return ujson.dumps({"id": uuid.uuid4().hex, "type": TYPE, "ts": time.time(),
                                "source": "bench-pub", "seq": seq,
                                "data": {"seq": seq, "sent": time.monotonic(), "pad": pad}}
                               ).encode()

        pad = _padding(lambda p: len(wire(10_000, p)))

        def send(seq: int) -> Any:
            return client.publish(topic, wire(seq, pad), qos=qos)

        def finish(last: Any) -> None:
            last.wait_for_publish(30)
    else:
        tars = _tars(spec, f"bench-pub-{topic.replace('/', '-')}", offline_queue=0)
        tars.start()
        source = tars.config.source
        pad = _padding(lambda p: len(Envelope(TYPE, source, {"seq": 10_000, "pad": p,
                                                             "sent": time.monotonic()},
                                              seq=10_000).encode()))

        def send(seq: int) -> Any:
            return tars.publish_event(topic, TYPE, {"seq": seq, "sent": time.monotonic(),
                                                    "pad": pad}, qos=qos)

        def finish(last: Any) -> None:
            assert isinstance(last, PublishHandle)
            last.wait(30)

    _wait(go, 60, "the start signal")
    start = time.monotonic()
    last = None
    for seq in range(spec.count):
        if spec.rate:
            delay = start + seq / spec.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        last = send(seq)
    if last is not None:
        finish(last)
    end = time.monotonic()
    results.put({"start": start, "end": end, "sent": spec.count})
    if spec.variant == "paho":
        client.disconnect()
        client.loop_stop()
    else:
        tars.stop()
