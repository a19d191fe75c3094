"""What runs in the benchmark's child processes: one publisher or one subscriber each.

Every Python contender (``paho5``, ``paho311``, ``tars``, ``tars311``, ``aio``,
``aiomqtt``) has a subscriber and a publisher doing the same work: the publisher sends
envelope-shaped JSON objects of :data:`SIZE` bytes; the subscriber JSON-decodes every
payload (raw paho and aiomqtt with ``ujson.loads``, the decoder tars_mqtt uses;
tars_mqtt with its own decode before the handler) and hands the envelope's ``data`` to
the same :class:`Recorder`.
The libraries' own code is in :mod:`bench.clients` (threaded) and :mod:`bench.aclients`
(asyncio); mosquitto's C clients are driven from the parent (:mod:`bench.cclients`).

Children talk to the parent only through a :class:`Channel`; every wait has a deadline,
so a lost broker ends a run instead of hanging it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import ujson

__all__ = ["ASYNC_LIBS", "PY_LIBS", "SIZE", "TYPE", "Channel", "PubSpec", "Recorder",
           "SubSpec", "apump", "publisher", "pump", "read_rss", "subscriber", "watch", "wire"]

TYPE = "bench.sample"
SIZE = 200  # bytes of JSON per message, envelope included
PY_LIBS = ("paho5", "tars", "aio", "aiomqtt", "paho311", "tars311")
ASYNC_LIBS = frozenset({"aio", "aiomqtt"})
INFLIGHT = 20  # QoS 1 messages in flight per publisher: paho's and tars_mqtt's setting


@dataclass(frozen=True)
class SubSpec:
    lib: str
    host: str
    port: int
    topic: str
    qos: int
    expect: int             # messages to wait for (fewer may come: QoS 0 can lose some)
    latency: bool = False   # record publish→handler latency of every message
    rss_every: int = 0      # sample RSS every this many handled messages (0: never)
    idle: float = 3.0       # once told to stop: give up after this long without a message
    probe: bool = False     # wait for one probe message instead (reconnect)
    limit: float = 900.0    # the longest a subscriber waits, whatever happens


@dataclass(frozen=True)
class PubSpec:
    lib: str
    host: str
    port: int
    topic: str
    qos: int
    count: int
    rate: float = 0.0    # messages per second; 0 = as fast as the library goes
    fence: bool = False  # end at the PUBACK of a QoS 1 message sent after the others
    window: int = 0      # stay at most this many messages ahead of the handled count


@dataclass(frozen=True)
class Channel:
    """The parent's handles into one child: events, the result queue, a shared counter."""

    ready: Any     # set by a subscriber once its subscription is acknowledged
    stop: Any      # set by the parent once the publisher is done
    go: Any        # set by the parent: the publisher starts
    results: Any   # one dict per child
    handled: Any   # RawValue('q'): messages handled so far (a windowed publisher reads it)


@dataclass
class Recorder:
    """Counts messages, their latencies and the subscriber's CPU time and memory."""

    spec: SubSpec
    handled: Any = None
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    cpu_first: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)  # (messages, VmRSS kB)
    rss_idle: int = 0  # VmRSS kB once subscribed, before any message
    probe_at: float = 0.0  # when the first probe came (reconnect)

    def on_data(self, data: Any) -> None:
        now = time.monotonic()
        if not isinstance(data, dict) or "seq" not in data:
            if isinstance(data, dict) and data.get("probe"):
                self.probe_at = self.probe_at or now
            return  # else a C publisher's warm-up line
        if not self.count:
            self.first, self.cpu_first = now, time.process_time()
        self.count += 1
        self.last = now
        if self.handled is not None:
            self.handled.value = self.count
        if self.spec.latency:
            self.latencies.append(now - data["sent"])

    def result(self, **extra: Any) -> dict[str, Any]:
        mem = read_rss()
        return {"count": self.count, "first": self.first, "last": self.last,
                "cpu": time.process_time() - self.cpu_first, "latencies": self.latencies,
                "rss": self.rss, "vmrss_kb": mem["VmRSS"], "vmhwm_kb": mem["VmHWM"],
                "rss_idle": self.rss_idle, "probe_at": self.probe_at, **extra}


def read_rss(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB, from /proc/PID/status."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key = line.split(":", 1)[0]
            if key in values:
                values[key] = int(line.split()[1])
    return values


def watch(spec: SubSpec, rec: Recorder, ch: Channel) -> None:
    """Wait until ``expect`` messages were handled, or the parent said stop and nothing
    came for ``idle`` seconds (or ``limit`` passed); sample RSS on the way. A ``probe``
    subscriber waits for its probe instead."""
    rec.rss_idle = read_rss()["VmRSS"]
    now = time.monotonic()
    deadline, seen, quiet_since, mark = now + spec.limit, -1, now, spec.rss_every
    while now < deadline:
        count = rec.count
        if spec.probe:
            if rec.probe_at:
                return
        else:
            if spec.rss_every and count >= mark:  # memory as the messages go through
                rec.rss.append((count, read_rss()["VmRSS"]))
                mark = (count // spec.rss_every + 1) * spec.rss_every
            if count >= spec.expect:
                return
        if count != seen:
            seen, quiet_since = count, now
        elif ch.stop.is_set() and now - quiet_since > spec.idle:
            return
        time.sleep(0.02)
        now = time.monotonic()


def wire(seq: int, pad: str, sent: float | None = None) -> bytes:
    """One envelope-shaped message as raw paho, aiomqtt and the C publisher send it."""
    return ujson.dumps({"id": uuid.uuid4().hex, "type": TYPE, "ts": time.time(),
                        "source": "bench-pub", "seq": seq,
                        "data": {"seq": seq, "sent": time.monotonic() if sent is None else sent,
                                 "pad": pad}}).encode()


def padding(size_of: Callable[[str], int]) -> str:
    """The pad that makes one message SIZE bytes; ``size_of(pad)`` is the wire size."""
    return "x" * max(0, SIZE - size_of(""))


def _wait(event: Any, timeout: float, what: str) -> None:
    if not event.wait(timeout):
        raise TimeoutError(f"bench: {what} did not happen within {timeout} s")


def _hold(ch: Channel, seq: int, window: int, stall: float = 60.0) -> None:
    """Block until the subscriber has handled all but ``window`` of the first ``seq``."""
    if seq - ch.handled.value < window:
        return
    deadline = time.monotonic() + stall
    while seq - ch.handled.value >= window:
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: the subscriber handled nothing for {stall} s")
        time.sleep(0.0002)


def pump(spec: PubSpec, ch: Channel, send: Callable[[int], Any],
         finish: Callable[[Any], None], fence: Callable[[], None]) -> dict[str, Any]:
    """The publishing loop of the threaded libraries: start on ``go``, pace or window."""
    _wait(ch.go, 60, "the start signal")
    start = time.monotonic()
    last = None
    for seq in range(spec.count):
        if spec.rate:
            delay = start + seq / spec.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if spec.window:
            _hold(ch, seq, spec.window)
        last = send(seq)
    if last is not None:
        finish(last)
    if spec.fence:
        fence()
    return {"start": start, "end": time.monotonic(), "sent": spec.count}


async def apump(spec: PubSpec, ch: Channel, send: Callable[[int], Coroutine[Any, Any, Any]],
                fence: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """The asyncio loop: QoS 0 awaits each publish; QoS 1 keeps INFLIGHT publishes going
    as tasks (awaiting each ack in turn would measure one message in flight)."""
    await asyncio.to_thread(_wait, ch.go, 60, "the start signal")
    start = time.monotonic()
    slots = asyncio.Semaphore(INFLIGHT)
    pending: set[asyncio.Task[Any]] = set()
    for seq in range(spec.count):
        if spec.rate:
            delay = start + seq / spec.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if not spec.qos:
            await send(seq)
            continue
        await slots.acquire()
        task = asyncio.create_task(send(seq))
        pending.add(task)
        task.add_done_callback(_done(pending, slots))
    if pending:
        await asyncio.gather(*pending)
    if spec.fence:
        await fence()
    return {"start": start, "end": time.monotonic(), "sent": spec.count}


def _done(pending: set[asyncio.Task[Any]], slots: asyncio.Semaphore
          ) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        pending.discard(task)
        slots.release()
    return done


def _impl(role: str, lib: str) -> Callable[..., Any]:
    if lib in ASYNC_LIBS:
        from . import aclients
        return getattr(aclients, f"{role}_{lib}")  # type: ignore[no-any-return]
    from . import clients
    return getattr(clients, f"{role}_{lib}")  # type: ignore[no-any-return]


def subscriber(spec: SubSpec, ch: Channel) -> None:
    """Child process: subscribe, set ``ready``, record (see :func:`watch`), put the result."""
    try:
        rec = Recorder(spec, ch.handled)
        run = _impl("subscribe", spec.lib)
        result = asyncio.run(run(spec, rec, ch)) if spec.lib in ASYNC_LIBS else run(spec, rec, ch)
    except BaseException as exc:  # the parent reports it instead of waiting for a timeout
        result = {"error": f"{spec.lib} subscriber: {type(exc).__name__}: {exc}"}
    ch.results.put(result)


def publisher(spec: PubSpec, ch: Channel) -> None:
    """Child process: connect, wait for ``go``, publish ``count`` messages, put the times."""
    try:
        run = _impl("publish", spec.lib)
        result = asyncio.run(run(spec, ch)) if spec.lib in ASYNC_LIBS else run(spec, ch)
    except BaseException as exc:
        result = {"error": f"{spec.lib} publisher: {type(exc).__name__}: {exc}"}
    ch.results.put(result)
