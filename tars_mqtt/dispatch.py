"""The bounded queue between paho's network thread and the worker pool.

Each subscription has its own mailbox; a mailbox is owned by at most one worker at a
time, so messages of one subscription are handled in arrival order while a slow
handler holds only its own worker. ``queue_size`` bounds the deliveries waiting in all
mailboxes together; what happens when it is full is the explicit ``policy``.

``submit`` never blocks: it runs on paho's network thread, which must keep reading the
socket (keepalive, the link watchdog) through any stall of a handler. Back-pressure comes
from the broker instead: a QoS 1/2 message is acknowledged only once released here
(handled, dropped by the policy, or skipped as a duplicate), and the broker sends no
more unacknowledged messages than the client's receive maximum. Under ``block`` the
network thread asks ``read_budget`` before each read: it parses no more packets than
fit, and while the queue is full it reads nothing (TCP pushes back to the broker) until
the workers make room, a short while at a time, so a QoS 0 flood slows down, not dropped.

A *feed* (:mod:`~tars_mqtt.feeds`) is a subscription whose deliveries no worker takes: a
consumer of its own (an event loop) is woken once when they start waiting, takes them in
batches and settles each when it is done with it, under the same bound and policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from .config import QueuePolicy
from .dedupe import Deduplicator
from .envelope import Inbound, Message
from .feeds import Feed
from .mailboxes import Delivery, Mailbox, Routed, Subscription
from .stats import Counters, suppressed

__all__ = ["Dispatcher"]

log = logging.getLogger("tars_mqtt")

_BATCH = 32  # deliveries one worker takes from a mailbox before letting others have a turn
# A worker that empties a mailbox fed faster than one message per _DENSE seconds keeps it
# for _LINGER seconds and takes what arrived meanwhile as one batch. Under the GIL a
# thread wake-up per message cost more than handling it (bench/RESULTS.md).
_DENSE = 0.0002  # streams above ~5,000 msg/s; slower ones keep their latency
_LINGER = 0.002


class Dispatcher:
    """Worker pool with per-subscription ordering and a bounded, policy-driven intake."""

    def __init__(self, *, workers: int, queue_size: int, policy: QueuePolicy,
                 counters: Counters, dedupe: Deduplicator, window: int | None = None,
                 name: str = "tars-mqtt") -> None:
        self._size = queue_size
        self._window = queue_size if window is None else window  # the broker's QoS 1/2 bound
        self._policy = policy
        self._counters = counters
        self._dedupe = dedupe
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # workers wait here for work
        self._space = threading.Condition(lock)  # close() waits here for the queue to drain
        self._boxes: dict[Subscription, Mailbox] = {}
        self._ready: deque[Mailbox] = deque()
        self._order: deque[Delivery] = deque()  # arrival order, for drop_oldest
        self._pending = 0
        self._reader_waits = False  # read_budget() said 0: call on_room once there is room
        self.on_room: Callable[[], None] = lambda: None  # wakes the network thread
        self._closed = False
        self._stopping = False
        self._busy_since: dict[str, float] = {}
        self._local = threading.local()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._pending

    def read_budget(self) -> int | None:
        """On the network thread, before a read: how many packets it may parse. None: all
        (a drop policy); 0: none, ``block``'s queue is full, and ``on_room`` is called from
        a worker once there is room; else what fits in the queue plus the receive window."""
        if self._policy != "block":
            return None
        self._reader_waits = True  # first: a worker making room from now on calls on_room
        pending = self._pending
        if pending >= self._size:
            return 0
        self._reader_waits = False
        return self._size + self._window - pending

    def _made_room(self) -> bool:
        """With the lock held, after ``_pending`` fell: True when the reader must be told."""
        if self._reader_waits and self._pending <= self._size - max(1, self._size // 4):
            self._reader_waits = False
            return True
        return False

    def submit(self, inbound: Inbound, subs: list[Subscription]) -> None:
        """On the network thread: queue one message for each matching subscription."""
        if subs:
            self.submit_many([(inbound, subs)])

    def submit_many(self, batch: list[Routed]) -> None:
        """On the network thread: queue each message for its subscriptions, taking the lock
        once and waking at most one worker per mailbox that was idle.

        Never waits. What does not fit is dropped and counted (and, QoS 1/2, acknowledged
        by the caller's release): the newest under ``drop_newest``, the oldest waiting
        under ``drop_oldest``. ``block`` takes every QoS 1/2 message (the broker sends no
        more than the receive ``window`` unacknowledged) and QoS 0 ones while the queue
        holds fewer than ``queue_size`` + ``window``; QoS 0 beyond that is dropped.
        """
        if not batch:
            return
        counters = self._counters
        counters.add("received", len(batch))
        evicted: list[Delivery] = []
        dropped = 0
        with self._cond:
            if self._closed:  # stopping: not handled, so never acknowledged
                for inbound, subs in batch:
                    inbound.abandon()
                    dropped += len(subs)
                batch = []
            boxes, oldest_first = self._boxes, self._policy == "drop_oldest"
            for inbound, subs in batch:
                if not self._make_room(len(subs), inbound.qos, evicted):
                    dropped += len(subs)
                    continue
                inbound.hold(len(subs))
                for sub in subs:
                    box = boxes.get(sub)
                    if box is None:
                        box = boxes[sub] = Mailbox(sub)
                    delivery = Delivery(box, inbound)
                    box.items.append(delivery)
                    if oldest_first:
                        self._remember_order(delivery)
                    self._pending += 1
                    if not box.scheduled:
                        self._schedule(box)
        if dropped:
            counters.add("dropped", dropped)
        for delivery in evicted:  # acknowledged (QoS 1/2) outside the lock
            delivery.inbound.release()

    def _schedule(self, box: Mailbox) -> None:
        """With the lock held: ``box`` has work for a worker, or for its feed's consumer."""
        box.scheduled = True
        if box.wake is not None:
            box.wake()
            return
        self._ready.append(box)
        self._cond.notify()

    def _make_room(self, needed: int, qos: int, evicted: list[Delivery]) -> bool:
        """With the lock held: True once ``needed`` deliveries may be queued, per the policy."""
        if self._policy == "block":  # the broker bounds QoS 1/2; QoS 0 gets room on top
            return qos > 0 or self._pending + min(needed, self._size) <= self._size + self._window
        needed = min(needed, self._size)
        if self._pending + needed <= self._size:
            return True
        if self._policy == "drop_newest":
            return False
        while self._pending + needed > self._size and self._order:
            oldest = self._order.popleft()
            if oldest.taken:
                continue
            # The oldest waiting delivery overall is the head of its own mailbox.
            oldest.box.items.popleft()
            oldest.taken = True
            self._pending -= 1
            self._counters.add("dropped")
            evicted.append(oldest)
        return True

    def _remember_order(self, delivery: Delivery) -> None:
        order = self._order
        order.append(delivery)
        while order and order[0].taken:
            order.popleft()
        if len(order) > 2 * self._size + 64:  # taken ones stuck behind a slow mailbox
            self._order = deque(d for d in order if not d.taken)

    def _work(self) -> None:
        me = threading.current_thread().name
        box: Mailbox | None = None  # the mailbox this worker holds between batches
        last_batch = 0.0
        while True:
            with self._cond:
                if self._stopping:
                    if box is not None:
                        self._abandon_mailbox(box)
                    return
                if box is None:
                    while not self._ready and not self._stopping:
                        self._cond.wait()
                    if not self._ready:
                        return
                    box = self._ready.popleft()
                batch = [box.items.popleft() for _ in range(min(_BATCH, len(box.items)))]
                for delivery in batch:
                    delivery.taken = True
            self._local.unfinished = len(batch)
            for n, delivery in enumerate(batch):
                if self._stopping:  # close() gave up waiting: start no more handlers
                    with self._cond:
                        self._abandon(batch[n:])
                    break
                self._busy_since[me] = time.monotonic()
                self._deliver(delivery)
                del self._busy_since[me]
                self._local.unfinished -= 1
            now = time.monotonic()
            dense, last_batch = now - last_batch < _DENSE, now
            with self._cond:
                self._pending -= len(batch)
                self._space.notify_all()
                if self._made_room():
                    self.on_room()
                if box.items:
                    if self._ready:  # others are waiting: to the back of the line
                        self._ready.append(box)
                        self._cond.notify()
                        box = None
                    continue  # else carry on with it, waking no other worker
                if not dense or self._stopping:
                    self._let_go(box)
                    box = None
                    continue
            time.sleep(_LINGER)  # still scheduled, so submit() queues without a wake-up
            with self._cond:
                if not box.items:
                    self._let_go(box)
                    box = None

    def forget_inactive(self) -> None:
        """After an unsubscribe: drop the idle mailboxes of subscriptions that are gone."""
        with self._cond:
            for sub, box in list(self._boxes.items()):
                if not sub.active and not box.scheduled:
                    del self._boxes[sub]

    def _let_go(self, box: Mailbox) -> None:
        """With the lock held: ``box`` is empty; forget it once its subscription is gone."""
        box.scheduled = False
        if not box.sub.active and self._boxes.get(box.sub) is box:
            del self._boxes[box.sub]

    def _deliver(self, delivery: Delivery) -> None:
        message = self.open(delivery)
        if message is None:
            return
        try:
            delivery.box.sub.handler(message)
        except Exception as exc:
            self.close_delivery(delivery, exc)
        else:
            self.close_delivery(delivery, None)

    def open(self, delivery: Delivery) -> Message | None:
        """The message for the handler, or None (and released) when its subscription is
        gone or it is a duplicate."""
        sub, inbound = delivery.box.sub, delivery.inbound
        if not sub.active:
            inbound.release()
            return None
        message = inbound.message(self._counters, raw=sub.raw)
        if message.envelope and self._dedupe.enabled and self._dedupe.is_duplicate(
            f"{id(sub)}:{message.envelope.id}"
        ):
            self._counters.add("duplicates")
            self._counters.record_latency(time.monotonic() - inbound.received_at)
            inbound.release()
            return None
        return message

    def close_delivery(self, delivery: Delivery, error: BaseException | None) -> None:
        """The handler returned (``error`` None) or raised ``error``: count, release."""
        inbound = delivery.inbound
        if error is None:
            self._counters.add("dispatched")
        else:
            quiet = self._counters.add_logged("handler_errors")
            if quiet is not None:
                log.error("handler %s failed on a message from %r%s", delivery.box.sub.name,
                          inbound.topic, suppressed(quiet), exc_info=error)
        self._counters.record_latency(time.monotonic() - inbound.received_at)
        inbound.release()

    def _abandon_mailbox(self, box: Mailbox) -> None:
        self._abandon(list(box.items))
        self._pending -= len(box.items)
        box.items.clear()
        box.scheduled = False

    def _abandon(self, deliveries: list[Delivery]) -> None:
        """With the lock held, at close: these will not be handled. Counted as dropped and
        never acknowledged, so the broker sends them again to a persistent session."""
        self._counters.add("dropped", len(deliveries))
        for delivery in deliveries:
            delivery.inbound.abandon()

    def longest_busy(self) -> tuple[str, float] | None:
        """The worker busiest on one handler call, and for how long; for watchdogs."""
        now = time.monotonic()
        busy = [(name, now - since) for name, since in list(self._busy_since.items())]
        return max(busy, key=lambda item: item[1]) if busy else None

    def liveness_problem(self, handler_limit: float) -> str | None:
        """A dead worker, or one in a single handler call for more than ``handler_limit`` s."""
        dead = [t.name for t in self._threads if t.ident is not None and not t.is_alive()]
        if dead:
            return f"worker threads died: {', '.join(dead)}"
        busy = self.longest_busy()
        if busy is not None and busy[1] > handler_limit:
            return f"{busy[0]} has been in one handler for {busy[1]:.1f} s"
        return None

    def close(self, timeout: float) -> bool:
        """Refuse new messages, let the queued ones finish, then stop the workers.

        Returns False when the queue did not drain within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        with self._cond:
            self._closed = True
            self._space.notify_all()
            # Called from a handler: its own unfinished batch cannot drain while it waits.
            own = getattr(self._local, "unfinished", 0) if current in self._threads else 0
            while self._pending > own and time.monotonic() < deadline:
                self._space.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            drained = self._pending <= own
            self._stopping = True
            for box in self._ready:
                self._abandon_mailbox(box)
            self._ready.clear()
            for box in self._boxes.values():  # what feeds have not taken yet
                if box.wake is not None and box.items:
                    self._abandon_mailbox(box)
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not current and thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return drained

    # Feeds (tars_mqtt.feeds): deliveries a consumer of its own takes in batches --------
    def feed(self, sub: Subscription, wake: Callable[[], None]) -> Feed:
        """Route ``sub``'s deliveries to a consumer instead of the workers; see ``Feed``."""
        box = Mailbox(sub, wake)
        with self._cond:
            self._boxes[sub] = box
        return Feed(self, box)

    def take(self, box: Mailbox, limit: int, settled: int = 0) -> list[Delivery]:
        """For a feed: up to ``limit`` of ``box``'s deliveries (none lets go of it), and
        ``settled`` it took before no longer count against the bound."""
        with self._cond:
            if settled:
                self._settled(settled)
            if self._stopping or not box.items:
                self._let_go(box)
                return []
            batch = [box.items.popleft() for _ in range(min(limit, len(box.items)))]
            for delivery in batch:
                delivery.taken = True
        return batch

    def unhandled(self, delivery: Delivery, *, ack: bool) -> None:
        """A feed's delivery that was not handled: counted as dropped; acknowledged (a
        policy dropped it) or never (the consumer stopped)."""
        self._counters.add("dropped")
        if ack:
            delivery.inbound.release()
        else:
            delivery.inbound.abandon()

    def busy(self, name: str, since: float | None) -> None:
        """A feed's consumer started (``since``) or ended (None) a handler call; watched
        by ``liveness_problem`` as a worker's are."""
        if since is None:
            self._busy_since.pop(name, None)
        else:
            self._busy_since[name] = since

    def held_done(self, settled: int) -> None:
        """``settled`` deliveries a feed took no longer count against the bound."""
        with self._cond:
            self._settled(settled)

    def _settled(self, count: int) -> None:
        self._pending -= count
        if self._closed:
            self._space.notify_all()
        if self._made_room():
            self.on_room()

    def close_feed(self, box: Mailbox) -> None:
        """A feed's consumer is gone: abandon what waits; later arrivals go to workers."""
        with self._cond:
            if box.items:
                self._abandon_mailbox(box)
            box.scheduled = False
            if self._boxes.get(box.sub) is box:
                del self._boxes[box.sub]

