"""The dispatcher alone: ordering per subscription, isolation, queue policies, errors, close.

Messages are fed straight into ``submit`` (as paho's network thread would), so these tests
say exactly what the worker pool does without a broker in between.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tars_mqtt import Envelope, Message
from tars_mqtt.config import QueuePolicy
from tars_mqtt.dedupe import Deduplicator
from tars_mqtt.dispatch import Dispatcher
from tars_mqtt.envelope import Inbound
from tars_mqtt.mailboxes import Subscription
from tars_mqtt.stats import Counters

WAIT = 10.0


class Recorder:
    """A handler that records message numbers and lets tests wait for a count."""

    def __init__(self, gate: threading.Event | None = None, jitter: bool = False) -> None:
        self.seen: list[int] = []
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.gate = gate
        self.jitter = jitter
        self.overlap = False
        self._busy = False
        self._cond = threading.Condition()
        self._rng = random.Random(id(self))

    def __call__(self, msg: Message) -> None:
        if self._busy:
            self.overlap = True  # two workers inside one subscription's handler
        self._busy = True
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "test never opened the gate"
        if self.jitter and self._rng.random() < 0.2:
            time.sleep(self._rng.random() / 2000)
        self._busy = False
        with self._cond:
            self.seen.append(int(msg.payload))
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.seen) >= count, timeout)


def inbound(n: int | bytes, topic: str = "t") -> Inbound:
    return Inbound(topic, n if isinstance(n, bytes) else str(n).encode(), 1, False)


@pytest.fixture
def make_dispatcher() -> Iterator[Callable[..., tuple[Dispatcher, Counters]]]:
    made: list[Dispatcher] = []

    def make(workers: int = 4, queue_size: int = 1000, policy: QueuePolicy = "block",
             dedupe_ttl: float = 0.0) -> tuple[Dispatcher, Counters]:
        counters = Counters()
        dispatcher = Dispatcher(workers=workers, queue_size=queue_size, policy=policy,
                                counters=counters, dedupe=Deduplicator(dedupe_ttl, 1000))
        made.append(dispatcher)
        dispatcher.start()
        return dispatcher, counters

    yield make
    for dispatcher in made:
        dispatcher.close(2.0)


def test_arrival_order_per_subscription_with_8_workers(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher(workers=8)
    recorders = [Recorder(jitter=True) for _ in range(6)]
    subs = [Subscription(f"s/{i}", rec) for i, rec in enumerate(recorders)]
    for n in range(300):
        for sub in subs:
            dispatcher.submit(inbound(n, sub.filter), [sub])
    for rec in recorders:
        assert rec.wait_for(300)
        assert rec.seen == list(range(300))
        assert not rec.overlap
    assert len(set().union(*(r.threads for r in recorders))) > 1  # the pool was really used
    assert counters.get("dispatched") == 1800


def test_slow_subscription_does_not_hold_up_others(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, _ = make_dispatcher(workers=2)
    gate = threading.Event()
    slow, fast = Recorder(gate), Recorder()
    slow_sub, fast_sub = Subscription("slow", slow), Subscription("fast", fast)
    try:
        for n in range(20):
            dispatcher.submit(inbound(n), [slow_sub])
        assert slow.entered.wait(WAIT)
        for n in range(50):
            dispatcher.submit(inbound(n), [fast_sub])
        assert fast.wait_for(50), "the fast subscription starved behind the slow one"
        assert slow.seen == []
    finally:
        gate.set()
    assert slow.wait_for(20) and slow.seen == list(range(20))


def test_one_message_each_matching_subscription_once(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher()
    recs = [Recorder() for _ in range(3)]
    dispatcher.submit(inbound(7), [Subscription("a/#", r) for r in recs])
    for rec in recs:
        assert rec.wait_for(1)
    assert dispatcher.close(WAIT)
    assert [r.seen for r in recs] == [[7], [7], [7]]
    assert (counters.get("received"), counters.get("dispatched")) == (1, 3)


def _fill(dispatcher: Dispatcher, policy_gate: threading.Event, count: int
          ) -> tuple[Recorder, Subscription]:
    """Block the one worker on message 0, then submit 1..count behind it."""
    rec = Recorder(policy_gate)
    sub = Subscription("flood", rec)
    dispatcher.submit(inbound(0), [sub])
    assert rec.entered.wait(WAIT)
    for n in range(1, count + 1):
        dispatcher.submit(inbound(n), [sub])
    return rec, sub


def test_drop_newest_keeps_the_first_and_counts_every_drop(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher(workers=1, queue_size=5, policy="drop_newest")
    gate = threading.Event()
    try:
        rec, _ = _fill(dispatcher, gate, 30)
        assert dispatcher.depth == 5  # the one in the handler counts against the bound
        assert counters.get("dropped") == 26
    finally:
        gate.set()
    assert rec.wait_for(5) and dispatcher.close(WAIT)
    assert rec.seen == [0, 1, 2, 3, 4]
    assert counters.get("received") == 31


def test_drop_oldest_keeps_the_last_and_counts_every_drop(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher(workers=1, queue_size=5, policy="drop_oldest")
    gate = threading.Event()
    try:
        rec, _ = _fill(dispatcher, gate, 30)
        assert dispatcher.depth == 5
        assert counters.get("dropped") == 26
    finally:
        gate.set()
    assert rec.wait_for(5) and dispatcher.close(WAIT)
    assert rec.seen == [0, 27, 28, 29, 30]  # the one already in a handler cannot be dropped


def test_drop_oldest_drops_across_subscriptions_in_arrival_order(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher(workers=1, queue_size=4, policy="drop_oldest")
    gate = threading.Event()
    try:
        blocker, _ = _fill(dispatcher, gate, 0)
        a, b = Recorder(), Recorder()
        sub_a, sub_b = Subscription("a", a), Subscription("b", b)
        for n in range(1, 7):  # a1 b2 a3 b4 a5 b6: room for 3 behind the blocked one
            dispatcher.submit(inbound(n), [sub_a if n % 2 else sub_b])
        assert counters.get("dropped") == 3
    finally:
        gate.set()
    assert a.wait_for(1) and b.wait_for(2) and dispatcher.close(WAIT)
    assert (blocker.seen, a.seen, b.seen) == ([0], [5], [4, 6])


class AckLog:
    """Inbound messages whose acknowledgement is recorded, in order, for the test to read."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self._cond = threading.Condition()

    def inbound(self, n: int, qos: int = 1, topic: str = "t") -> Inbound:
        return Inbound(topic, str(n).encode(), qos, False, mid=n,
                       on_done=self._done if qos else None)  # as the transport does

    def _done(self, message: Inbound) -> None:
        with self._cond:
            self.acked.append(message.mid)
            self._cond.notify_all()

    def wait_acked(self, count: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.acked) >= count, WAIT)


def routed(message: Inbound, dispatcher: Dispatcher, subs: list[Subscription]) -> None:
    """What the network thread does: queue, then let go of its own hold."""
    dispatcher.submit(message, subs)
    message.release()


def held_first(dispatcher: Dispatcher) -> tuple[threading.Event, Recorder, Subscription, AckLog]:
    """Message 0 routed and held in its handler until the test opens ``gate``."""
    gate = threading.Event()
    rec = Recorder(gate)
    sub = Subscription("t", rec)
    acks = AckLog()
    routed(acks.inbound(0), dispatcher, [sub])
    assert rec.entered.wait(WAIT)
    return gate, rec, sub, acks


def test_block_policy_never_waits_and_keeps_every_qos1_message(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    """``submit`` runs on paho's thread: under ``block`` it returns at once. It takes every
    QoS 1 message (the broker bounds those by the receive window), and QoS 0 ones while the
    queue holds fewer than its size plus that window; QoS 0 beyond is dropped, counted."""
    dispatcher, counters = make_dispatcher(workers=1, queue_size=3, policy="block")
    gate, rec, sub, acks = held_first(dispatcher)
    try:
        for n in range(1, 5):  # would have parked the caller before
            routed(acks.inbound(n), dispatcher, [sub])
        for n in range(5, 8):  # room for one more (3 + 3), then dropped
            routed(acks.inbound(n, qos=0), dispatcher, [sub])
        for n in range(8, 20):  # QoS 1 still taken
            routed(acks.inbound(n), dispatcher, [sub])
        assert dispatcher.depth == 18 and counters.get("dropped") == 2
        assert acks.acked == []  # none handled yet, so none acknowledged
    finally:
        gate.set()
    assert rec.wait_for(18) and rec.seen == [n for n in range(20) if n not in (6, 7)]
    assert acks.wait_acked(17) and acks.acked == [n for n in range(20) if n not in (5, 6, 7)]


def test_ack_comes_only_after_the_handler_returned(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, _ = make_dispatcher(workers=1)
    gate = threading.Event()
    rec = Recorder(gate)
    acks = AckLog()
    try:
        routed(acks.inbound(7), dispatcher, [Subscription("t", rec)])
        assert rec.entered.wait(WAIT)
        assert acks.acked == []  # in the handler: not yet acknowledged
    finally:
        gate.set()
    assert acks.wait_acked(1) and acks.acked == [7] and rec.seen == [7]


def test_ack_waits_for_every_subscription_of_the_message(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, _ = make_dispatcher(workers=2)
    gate = threading.Event()
    slow, fast = Recorder(gate), Recorder()
    acks = AckLog()
    try:
        routed(acks.inbound(1), dispatcher, [Subscription("t", slow), Subscription("t", fast)])
        assert fast.wait_for(1) and slow.entered.wait(WAIT)
        assert acks.acked == []
    finally:
        gate.set()
    assert acks.wait_acked(1) and acks.acked == [1]


def test_dropped_duplicate_and_unrouted_messages_are_acked(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    """Nothing is left in flight at the broker: what the policy drops, what dedup skips and
    what no handler wants is acknowledged (and counted where it is a drop)."""
    dispatcher, counters = make_dispatcher(workers=1, queue_size=2, policy="drop_oldest")
    gate, rec, sub, acks = held_first(dispatcher)
    try:
        for n in (1, 2, 3):  # room for one behind the busy handler: 1 and 2 pushed out
            routed(acks.inbound(n), dispatcher, [sub])
        routed(acks.inbound(4), dispatcher, [])  # matched no handler
        assert acks.wait_acked(3) and acks.acked == [1, 2, 4]
        assert counters.get("dropped") == 2
    finally:
        gate.set()
    assert acks.wait_acked(5) and sorted(acks.acked) == [0, 1, 2, 3, 4]
    dedup, dedup_counters = make_dispatcher(workers=1, dedupe_ttl=60)
    twice = Envelope(type="t", source="s").encode()
    once = Subscription("t", lambda msg: None)
    for mid in (10, 11):  # a redelivery: the same envelope again
        routed(Inbound("t", twice, 1, False, mid=mid, on_done=acks._done), dedup, [once])
    assert acks.wait_acked(7) and acks.acked[5:] == [10, 11]
    assert dedup_counters.get("duplicates") == 1


def test_handler_exception_is_counted_logged_and_the_worker_lives(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]],
        caplog: pytest.LogCaptureFixture) -> None:
    dispatcher, counters = make_dispatcher(workers=1)
    rec = Recorder()

    def flaky(msg: Message) -> None:
        if msg.payload == b"1":
            raise RuntimeError("boom")
        rec(msg)

    sub = Subscription("flaky/x", flaky)
    with caplog.at_level(logging.ERROR, logger="tars_mqtt"):
        for n in range(3):
            dispatcher.submit(inbound(n, "robot/flaky"), [sub])
        assert rec.wait_for(2)
    assert rec.seen == [0, 2]
    assert counters.get("handler_errors") == 1 and counters.get("dispatched") == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "robot/flaky" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "boom" in caplog.text
    assert dispatcher.liveness_problem(60.0) is None


def test_decode_errors_counted_once_per_message_and_handlers_get_it_raw(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher()
    got: list[Message] = []
    lock = threading.Lock()

    def keep(msg: Message) -> None:
        with lock:
            got.append(msg)

    subs = [Subscription("a", keep), Subscription("b", keep)]
    dispatcher.submit(Inbound("x", b"[1,2]", 0, False), subs)
    assert dispatcher.close(WAIT)
    assert len(got) == 2 and all(m.envelope is None and m.data == [1, 2] for m in got)
    assert got[0].decode_error is not None and "not an object" in got[0].decode_error
    assert counters.get("decode_errors") == 1 and counters.get("handler_errors") == 0


def test_dedupe_drops_a_redelivery_per_subscription(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher(dedupe_ttl=60)
    env = Envelope(type="t", source="s").encode()
    calls: list[str] = []

    def count(msg: Message) -> None:
        calls.append(msg.topic)

    subs = [Subscription("a", count), Subscription("b", count)]
    dispatcher.submit(Inbound("x", env, 1, False), subs)
    dispatcher.submit(Inbound("x", env, 1, False), subs)  # QoS 1 redelivery, same id
    dispatcher.submit(Inbound("x", Envelope(type="t", source="s").encode(), 1, False), subs[:1])
    assert dispatcher.close(WAIT)
    assert len(calls) == 3  # each subscription once for the first, once for the new id
    assert counters.get("duplicates") == 2


def test_inactive_subscription_is_skipped(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher()
    rec = Recorder()
    sub = Subscription("a", rec)
    sub.active = False  # unsubscribed while its messages were queued
    dispatcher.submit(inbound(1), [sub])
    assert dispatcher.close(WAIT)
    assert rec.seen == [] and counters.get("dispatched") == 0


def test_close_drains_then_joins_every_worker(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher(workers=3)
    rec = Recorder(jitter=True)
    sub = Subscription("a", rec)
    for n in range(200):
        dispatcher.submit(inbound(n), [sub])
    assert dispatcher.close(WAIT) is True
    assert rec.seen == list(range(200))
    assert dispatcher.depth == 0
    workers = [t for t in threading.enumerate() if t in dispatcher._threads]
    assert workers == []
    dispatcher.submit(inbound(999), [sub])  # after close: refused and counted
    assert counters.get("dropped") == 1 and rec.seen[-1] == 199


def test_close_reports_a_handler_that_would_not_finish(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, _ = make_dispatcher(workers=1)
    gate = threading.Event()
    rec = Recorder(gate)
    sub = Subscription("stuck", rec)
    try:
        dispatcher.submit(inbound(0), [sub])
        dispatcher.submit(inbound(1), [sub])
        assert rec.entered.wait(WAIT)
        assert dispatcher.close(0.2) is False
    finally:
        gate.set()


def test_close_never_acks_what_was_not_handled(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    """Left in the queue at close, or arriving after it: not acknowledged, so the broker
    sends it again to a persistent session; counted as dropped."""
    dispatcher, counters = make_dispatcher(workers=1, queue_size=5)
    gate, rec, sub, acks = held_first(dispatcher)
    routed(acks.inbound(1), dispatcher, [sub])
    closer = threading.Thread(target=dispatcher.close, args=(0.2,), daemon=True)
    closer.start()
    closer.join(WAIT)
    routed(acks.inbound(2), dispatcher, [sub])
    gate.set()
    assert acks.wait_acked(1)
    assert acks.acked == [0] and rec.seen == [0]
    assert counters.get("dropped") == 2


def test_workers_are_named(make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, _ = make_dispatcher(workers=3)
    names = [t.name for t in dispatcher._threads]
    assert names == ["tars-mqtt-worker-0", "tars-mqtt-worker-1", "tars-mqtt-worker-2"]
    assert all(t.is_alive() for t in dispatcher._threads)


def test_latency_recorded(make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher()
    dispatcher.submit(inbound(1), [Subscription("a", lambda msg: None)])
    assert dispatcher.close(WAIT)
    snap: Any = counters.snapshot(queue_depth=0, offline_queued=0)
    assert snap.handler_latency_p50 > 0.0


def test_raw_subscriptions_do_not_count_decode_errors(
        make_dispatcher: Callable[..., tuple[Dispatcher, Counters]]) -> None:
    dispatcher, counters = make_dispatcher()
    raw_rec, strict_rec = Recorder(), Recorder()
    raw_sub = Subscription("sensor", raw_rec, raw=True)
    strict_sub = Subscription("sensor", strict_rec)
    dispatcher.submit(inbound(1), [raw_sub])  # only a raw consumer: not an error
    assert raw_rec.wait_for(1)
    assert counters.get("decode_errors") == 0
    dispatcher.submit(inbound(2), [raw_sub, strict_sub])  # someone expected an envelope
    assert dispatcher.close(WAIT)
    assert raw_rec.seen == [1, 2] and strict_rec.seen == [2]
    assert counters.get("decode_errors") == 1
