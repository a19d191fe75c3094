"""The asyncio twin's batched hand-off against a real mosquitto.

Coroutine handlers and ``messages()`` streams take the client's queue in batches on the
loop: order per subscription across batches, the ack only after the coroutine returned
(a crash mid-batch or a stop that gives up means redelivery), the queue's bound and
policies with a slow handler, and cancellation at stop.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.handoff import _BATCH
from tars_mqtt.testing import Broker

from .test_aio import MakeAsync, _acked, make_async, run, until

__all__ = ["make_async"]  # the fixture, shared with test_aio

MakeClient = Callable[..., MQTTClient]


def test_order_per_subscription_across_batches(make_async: MakeAsync,
                                               make_client: MakeClient) -> None:
    count = 1500
    publisher = make_client()

    async def main() -> None:
        seen: dict[str, list[int]] = {"aio/a": [], "aio/b": []}
        done = asyncio.Event()
        async with make_async() as client:
            async def on_item(msg: Message) -> None:
                seen[msg.topic].append(msg.data["n"])
                if msg.data["n"] % 7 == 0:
                    await asyncio.sleep(0)  # let the other subscription's task in
                if all(len(got) == count for got in seen.values()):
                    done.set()

            for topic in seen:
                client.subscribe(topic, on_item, qos=1)
            await until(lambda: all(_acked(client, topic) for topic in seen))
            handles = [publisher.publish_event(topic, "item", {"n": n})
                       for n in range(count) for topic in seen]
            await asyncio.to_thread(handles[-1].wait, 30)
            await asyncio.wait_for(done.wait(), 30)
            assert seen == {topic: list(range(count)) for topic in seen}
            assert client.stats().dispatched == 2 * count and client.stats().dropped == 0

    run(main(), 60)


def test_a_slow_handler_is_bounded_by_the_queue_and_its_policy(
        make_async: MakeAsync, make_client: MakeClient) -> None:
    """QoS 0 beyond ``queue_size`` + the receive window is dropped, counted; QoS 1 is held
    back by the broker (nothing lost, in order); the loop never holds more than the bound."""
    publisher = make_client()

    async def main() -> None:
        gate = asyncio.Event()
        seen: dict[int, list[int]] = {0: [], 1: []}
        depth: list[int] = []
        async with make_async(queue_size=10) as client:
            async def on_item(msg: Message) -> None:
                await gate.wait()
                depth.append(client.stats().queue_depth)
                seen[msg.qos].append(msg.data["n"])

            client.subscribe("aio/slow0", on_item, qos=0)
            client.subscribe("aio/slow1", on_item, qos=1)
            await until(lambda: _acked(client, "aio/slow0") and _acked(client, "aio/slow1"))
            for n in range(300):
                publisher.publish_event("aio/slow0", "item", {"n": n}, qos=0)
            await until(lambda: client.stats().received == 300, 20)
            assert client.stats().queue_depth <= 10 + 10  # queue_size + window under block
            assert client.stats().dropped == 300 - client.stats().queue_depth
            handles = [publisher.publish_event("aio/slow1", "item", {"n": n}, qos=1)
                       for n in range(50)]
            gate.set()
            await asyncio.to_thread(handles[-1].wait, 20)
            await until(lambda: len(seen[1]) == 50, 20)
            kept = 300 - client.stats().dropped
            assert len(seen[0]) == kept and seen[0] == sorted(seen[0])
            assert seen[1] == list(range(50))
            # QoS 0's room, QoS 1's receive window, and what the batch in hand settled
            # already (it stops counting at the next take, as a worker's batch does)
            assert max(depth) <= 10 + 10 + 10 + _BATCH

    run(main(), 60)


def test_drop_newest_under_a_slow_handler_acks_what_it_drops(
        make_async: MakeAsync, make_client: MakeClient) -> None:
    """As the sync client: a QoS 1 message the policy drops is acknowledged and counted, so
    a receive window of 5 keeps moving."""
    publisher = make_client()

    async def main() -> None:
        gate, entered = asyncio.Event(), asyncio.Event()
        seen: list[int] = []
        async with make_async(queue_size=2, queue_policy="drop_newest",
                              receive_maximum=5) as client:
            async def on_item(msg: Message) -> None:
                entered.set()
                await gate.wait()
                seen.append(msg.data["n"])

            client.subscribe("aio/drops", on_item, qos=1)
            await until(lambda: _acked(client, "aio/drops"))
            await asyncio.to_thread(publisher.publish_event("aio/drops", "t", {"n": 0}).wait, 10)
            await asyncio.wait_for(entered.wait(), 10)
            for n in range(1, 31):
                await asyncio.to_thread(
                    publisher.publish_event("aio/drops", "t", {"n": n}).wait, 10)
            await until(lambda: client.stats().received == 31)
            gate.set()
            await until(lambda: len(seen) == 2)
            assert client.stats().dropped == 29
            await asyncio.to_thread(publisher.publish_event("aio/drops", "t", {"n": 99}).wait, 10)
            await until(lambda: len(seen) == 3)
            assert seen == [0, 1, 99]

    run(main(), 40)


def test_stop_cancels_a_stuck_handler_and_leaves_its_batch_to_the_broker(
        make_async: MakeAsync, make_config: Callable[..., MQTTConfig],
        make_client: MakeClient) -> None:
    config = make_config(session_expiry=60)
    publisher = make_client()

    async def main() -> None:
        cancelled: list[int] = []
        entered = asyncio.Event()
        first = make_async(**{"url": config.url, "client_id": config.client_id,
                              "session_expiry": 60})

        async def stuck(msg: Message) -> None:
            entered.set()
            try:
                await asyncio.Event().wait()  # never set: only stop() ends it
            except asyncio.CancelledError:
                cancelled.append(msg.data["n"])
                raise

        first.subscribe("aio/stuck", stuck, qos=1)
        await first.start()
        for n in range(5):
            await asyncio.to_thread(publisher.publish_event("aio/stuck", "t", {"n": n}).wait, 10)
        await asyncio.wait_for(entered.wait(), 10)
        await until(lambda: first.stats().received == 5)
        await first.stop(0.3)
        assert cancelled == [0]  # before stop() returned
        assert first.stats().dropped == 5 and first.stats().dispatched == 0

        got: list[int] = []
        second = make_async(**{"url": config.url, "client_id": config.client_id,
                               "session_expiry": 60})

        async def handle(msg: Message) -> None:
            got.append(msg.data["n"])

        second.subscribe("aio/stuck", handle, qos=1)
        async with second:
            await until(lambda: len(got) >= 5)
        assert sorted(got) == [0, 1, 2, 3, 4]

    run(main(), 40)


_CHILD = """
import asyncio, sys
from tars_mqtt import MQTTConfig
from tars_mqtt.aio import AsyncMQTTClient

async def main() -> None:
    config = MQTTConfig(url=sys.argv[1], client_id=sys.argv[2], session_expiry=300,
                        heartbeat_interval=30)
    client = AsyncMQTTClient(config)
    stall_on = int(sys.argv[3])

    async def on_job(msg) -> None:
        n = msg.data["n"]
        if n == stall_on:
            print("stalled on", n, flush=True)
            await asyncio.Event().wait()  # SIGKILL comes first
        print("handled", n, flush=True)

    client.subscribe("crash/aio", on_job, qos=1)
    await client.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class Child:
    """One twin in its own process; its stdout lines, read on a thread."""

    def __init__(self, broker: Broker, stall_on: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, broker.url, "aio-crash", str(stall_on)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def until(self, wanted: str) -> list[str]:
        """Every line up to and with ``wanted``."""
        seen: list[str] = []
        while not seen or seen[-1] != wanted:
            seen.append(self.lines.get(timeout=20))
        return seen

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_crash_mid_batch_means_redelivery_not_loss(broker: Broker,
                                                     make_client: MakeClient) -> None:
    """Five jobs queued for a persistent session arrive together; the handler finishes two
    and is killed inside the third: the restarted process gets the other three."""
    children: list[Child] = []
    try:
        children.append(Child(broker, stall_on=-1))  # makes the session, then dies
        children[0].until("ready")
        children[0].kill()
        publisher = make_client()
        for n in range(5):
            publisher.publish_event("crash/aio", "t.job", {"n": n}).wait(10)
        children.append(Child(broker, stall_on=2))
        before = children[1].until("stalled on 2")
        children[1].kill()
        children.append(Child(broker, stall_on=-1))
        after: set[str] = set()
        while not {"handled 2", "handled 3", "handled 4"} <= after:
            after.add(children[2].lines.get(timeout=20))
        handled = {line for line in before + sorted(after) if line.startswith("handled")}
        assert handled == {f"handled {n}" for n in range(5)}, (before, after)
        assert "handled 2" not in before
    finally:
        for child in children:
            child.kill()


def test_a_running_coroutine_handler_is_watched_like_a_worker(make_async: MakeAsync,
                                                               make_client: MakeClient) -> None:
    """``liveness_problem`` (the services' watchdog asks the sync client) names a coroutine
    handler that has run longer than the limit, and forgets it once it returned."""
    publisher = make_client()

    async def main() -> None:
        gate, entered, left = asyncio.Event(), asyncio.Event(), asyncio.Event()
        async with make_async() as client:
            async def on_job(msg: Message) -> None:
                entered.set()
                await gate.wait()
                left.set()

            client.subscribe("aio/watched", on_job, qos=1)
            await until(lambda: _acked(client, "aio/watched"))
            publisher.publish_event("aio/watched", "t", {})
            await asyncio.wait_for(entered.wait(), 10)
            problem = client.sync.liveness_problem(0.0)
            assert problem is not None and "on_job" in problem and "event loop" in problem
            assert client.liveness_problem(3600.0) is None
            gate.set()
            await asyncio.wait_for(left.wait(), 10)
            await until(lambda: client.stats().dispatched == 1)
            assert client.sync.liveness_problem(0.0) is None

    run(main())
