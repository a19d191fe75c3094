"""Feeds alone: a subscription taken in batches by a consumer of its own, not the workers.

Messages go straight into ``submit`` (as paho's network thread would); the test is the
consumer, so every wake-up, take and settle is seen exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tars_mqtt.config import QueuePolicy
from tars_mqtt.dedupe import Deduplicator
from tars_mqtt.dispatch import Dispatcher
from tars_mqtt.feeds import Feed
from tars_mqtt.mailboxes import Subscription
from tars_mqtt.stats import Counters

from .test_dispatch import AckLog, routed


class Consumer:
    """Counts wake-ups; the test takes when it likes."""

    def __init__(self) -> None:
        self.wakes = 0
        self.handled: list[int] = []

    def wake(self) -> None:
        self.wakes += 1

    def never(self, message: object) -> None:
        raise AssertionError("a worker called a feed's handler")


MakeFeed = Callable[..., tuple[Dispatcher, Counters, Feed, Consumer]]


@pytest.fixture
def make_feed() -> Iterator[MakeFeed]:
    made: list[Dispatcher] = []

    def make(queue_size: int = 1000, policy: QueuePolicy = "block"
             ) -> tuple[Dispatcher, Counters, Feed, Consumer]:
        counters = Counters()
        dispatcher = Dispatcher(workers=2, queue_size=queue_size, policy=policy,
                                counters=counters, dedupe=Deduplicator(0.0, 10))
        dispatcher.start()
        made.append(dispatcher)
        consumer = Consumer()
        feed = dispatcher.feed(Subscription("t", consumer.never, qos=1), consumer.wake)
        return dispatcher, counters, feed, consumer

    yield make
    for dispatcher in made:
        dispatcher.close(1.0)


def test_one_wake_up_per_batch_in_arrival_order(make_feed: MakeFeed) -> None:
    dispatcher, counters, feed, consumer = make_feed()
    acks = AckLog()
    for n in range(10):
        routed(acks.inbound(n), dispatcher, [feed.subscription])
    assert consumer.wakes == 1  # the first woke the consumer; the rest rode along
    first, second = feed.take(4), feed.take(100)
    assert [len(first), len(second)] == [4, 6]
    for taken in first + second:
        message = taken.message()
        assert message is not None
        consumer.handled.append(int(message.payload))
        taken.settle()
    assert consumer.handled == list(range(10))
    assert feed.take(100) == []  # none left: the next arrival wakes it again
    routed(acks.inbound(10), dispatcher, [feed.subscription])
    assert consumer.wakes == 2
    assert counters.get("dispatched") == 10 and acks.acked == list(range(10))


def test_acked_only_once_settled_and_counted_against_the_bound_until_then(
        make_feed: MakeFeed) -> None:
    dispatcher, counters, feed, _ = make_feed(queue_size=3, policy="drop_newest")
    acks = AckLog()
    for n in range(2):
        routed(acks.inbound(n), dispatcher, [feed.subscription])
    held = feed.take(10)
    assert acks.acked == [] and dispatcher.depth == 2  # taken, not handled: still counted
    for n in range(2, 6):  # room for one more: 3, 4 and 5 dropped (and acknowledged)
        routed(acks.inbound(n), dispatcher, [feed.subscription])
    assert counters.get("dropped") == 3 and acks.acked == [3, 4, 5]
    for taken in held:
        taken.settle()
        taken.settle()  # a second settle does nothing
    assert sorted(acks.acked) == [0, 1, 3, 4, 5] and counters.get("dispatched") == 2
    rest = feed.take(10)  # also releases the two settled ones from the bound
    assert dispatcher.depth == 1 and len(rest) == 1


def test_drop_and_abandon(make_feed: MakeFeed) -> None:
    dispatcher, counters, feed, _ = make_feed()
    acks = AckLog()
    for n in range(3):
        routed(acks.inbound(n), dispatcher, [feed.subscription])
    dropped, abandoned, failed = feed.take(3)
    dropped.drop()  # the consumer's own bound: acknowledged
    abandoned.abandon()  # the consumer stopped: the broker sends it again
    assert failed.message() is not None
    failed.settle(RuntimeError("handler bug"))  # handled, if badly: acknowledged
    feed.flush()
    assert sorted(acks.acked) == [0, 2] and dispatcher.depth == 0
    assert counters.get("dropped") == 2 and counters.get("handler_errors") == 1


def test_close_leaves_what_waits_unacknowledged_and_stops_the_feed(
        make_feed: MakeFeed) -> None:
    dispatcher, counters, feed, _ = make_feed()
    acks = AckLog()
    routed(acks.inbound(0), dispatcher, [feed.subscription])
    (held,) = feed.take(1)
    routed(acks.inbound(1), dispatcher, [feed.subscription])
    assert dispatcher.close(0.1) is False  # 0 is held, 1 waits: neither handled in time
    assert feed.take(10) == []  # stopping: nothing more is handed out
    held.abandon()
    feed.flush()
    assert acks.acked == [] and counters.get("dropped") == 2 and dispatcher.depth == 0


def test_a_closed_feed_gives_later_arrivals_to_the_usual_path(make_feed: MakeFeed) -> None:
    """After the unsubscribe and ``close``, what still comes is released (acknowledged) as
    for any subscription that is gone; no worker calls the feed's handler."""
    dispatcher, counters, feed, consumer = make_feed()
    acks = AckLog()
    routed(acks.inbound(0), dispatcher, [feed.subscription])
    feed.subscription.active = False
    feed.close()
    routed(acks.inbound(1), dispatcher, [feed.subscription])  # routed before the unsubscribe
    assert acks.wait_acked(1) and acks.acked == [1]
    assert counters.get("dropped") == 1 and counters.get("handler_errors") == 0
    assert consumer.wakes == 1
