"""The asyncio twin against a real mosquitto .

No pytest-asyncio: every test is a sync test running one coroutine with ``asyncio.run``
under an overall deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from tars_mqtt import Message, MQTTClient, MQTTConfig, PublishHandle, RequestTimeout
from tars_mqtt.aio import AsyncMQTTClient
from tars_mqtt.testing import Broker

MakeAsync = Callable[..., AsyncMQTTClient]


def _acked(client: AsyncMQTTClient, topic_filter: str) -> bool:
    route = client.sync._routing.get(topic_filter)
    return route is not None and route.acked.is_set()


def run(coro: Coroutine[Any, Any, None], timeout: float = 20.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition, checking it every 10 ms, failing at the deadline."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
def make_async(make_config: Callable[..., MQTTConfig]) -> Iterator[MakeAsync]:
    """Async clients; tests stop them with ``async with``, teardown only catches leftovers."""
    clients: list[AsyncMQTTClient] = []

    def make(**fields: Any) -> AsyncMQTTClient:
        clients.append(AsyncMQTTClient(make_config(**fields)))
        return clients[-1]

    yield make
    for client in clients:
        client.sync.stop(timeout=2)


def test_importing_tars_mqtt_does_not_import_aio() -> None:
    code = "import sys, tars_mqtt; print('tars_mqtt.aio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30)
    assert out.stdout.strip() == "False"
    import tars_mqtt.aio
    assert tars_mqtt.aio.__all__ == ["AsyncMQTTClient"]


def test_publish_and_coroutine_handler_on_the_callers_loop(make_async: MakeAsync) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: list[tuple[Any, asyncio.AbstractEventLoop, threading.Thread]] = []
        got = asyncio.Event()
        client = make_async()

        @client.subscribe("aio/ping", qos=1)
        async def on_ping(msg: Message) -> None:
            seen.append((msg.data, asyncio.get_running_loop(), threading.current_thread()))
            got.set()

        async with client:
            handle = await client.publish_event("aio/ping", "ping", {"n": 1})
            assert isinstance(handle, PublishHandle) and handle.done
            await asyncio.wait_for(got.wait(), 5)

        assert seen == [({"n": 1}, loop, threading.main_thread())]
        assert client.stats().dispatched == 1

    run(main())


def test_handlers_keep_order_and_errors_are_isolated(make_async: MakeAsync) -> None:
    async def main() -> None:
        order: list[int] = []
        last = asyncio.Event()
        async with make_async(workers=4) as client:
            async def on_item(msg: Message) -> None:
                n = msg.data["n"]
                await asyncio.sleep(0.002 if n % 2 else 0)  # interleave with other tasks
                order.append(n)
                if n == 19:
                    last.set()
                if n == 7:
                    raise RuntimeError("handler bug")

            client.subscribe("aio/items", on_item, qos=1)
            await until(lambda: _acked(client, "aio/items"))
            for n in range(20):
                await client.publish_event("aio/items", "item", {"n": n})
            await asyncio.wait_for(last.wait(), 5)
            assert order == list(range(20))
            assert client.stats().handler_errors == 1

    run(main())


def test_messages_over_a_wildcard(make_async: MakeAsync) -> None:
    async def main() -> None:
        async with make_async() as client:
            async with client.messages("aio/+/temp", qos=1) as stream:
                await client.publish_event("aio/kitchen/temp", "temp", {"c": 21})
                await client.publish_event("aio/kitchen/humidity", "hum", {"rh": 40})
                await client.publish_event("aio/hall/temp", "temp", {"c": 19})
                got = [await anext(stream) for _ in range(2)]
            assert [(m.topic, m.data) for m in got] == [
                ("aio/kitchen/temp", {"c": 21}), ("aio/hall/temp", {"c": 19})]
            assert client.sync._routing.get("aio/+/temp") is None  # unsubscribed on exit

            # The short form: plain `async for`, subscribed on first use.
            async def first_two() -> list[str]:
                topics = []
                async for msg in client.messages("aio/#", qos=1):
                    topics.append(msg.topic)
                    if len(topics) == 2:
                        break
                return topics

            reader = asyncio.create_task(first_two())
            await until(lambda: _acked(client, "aio/#"))
            await client.publish("aio/a", b"1", qos=1)
            await client.publish("aio/b/c", b"2", qos=1)
            assert await asyncio.wait_for(reader, 5) == ["aio/a", "aio/b/c"]
            await until(lambda: client.sync._routing.get("aio/#") is None)  # closed on break

    run(main())


@pytest.mark.parametrize(("policy", "kept"), [("drop_newest", [0, 1]), ("drop_oldest", [3, 4])])
def test_messages_drop_policy_is_counted(make_async: MakeAsync, policy: str,
                                         kept: list[int]) -> None:
    async def main() -> None:
        async with make_async() as client:
            async with client.messages("aio/burst", qos=1, maxsize=2,
                                       policy=policy) as stream:  # type: ignore[arg-type]
                for n in range(5):
                    await client.publish_event("aio/burst", "burst", {"n": n})
                await until(lambda: client.stats().dropped == 3)
                got = [(await anext(stream)).data["n"] for _ in range(2)]
            assert got == kept
            assert client.stats().dropped == 3

    run(main())


def test_messages_block_policy_loses_nothing(make_async: MakeAsync) -> None:
    async def main() -> None:
        async with make_async() as client:
            async with client.messages("aio/slow", qos=1, maxsize=1, policy="block") as stream:
                for n in range(6):
                    await client.publish_event("aio/slow", "slow", {"n": n})
                got = []
                async for msg in stream:
                    got.append(msg.data["n"])
                    await asyncio.sleep(0.005)  # a slow consumer
                    if len(got) == 6:
                        break
            assert got == list(range(6))
            assert client.stats().dropped == 0

    run(main())


def test_stop_ends_the_message_stream(make_async: MakeAsync) -> None:
    async def main() -> None:
        client = await make_async().start()
        async with client.messages("aio/never") as stream:
            async def drain() -> int:
                return len([m async for m in stream])

            reader = asyncio.create_task(drain())
            await asyncio.sleep(0)
            await client.stop()
            assert await asyncio.wait_for(reader, 5) == 0

    run(main())


async def _serve_doubles(service: AsyncMQTTClient, topic: str = "aio/double") -> None:
    async def on_request(msg: Message) -> None:
        await service.reply(msg, "double.result", {"n": msg.data["n"] * 2})

    service.subscribe(topic, on_request, qos=1)
    await service.start()


def test_request_reply_between_two_async_clients(make_async: MakeAsync) -> None:
    async def main() -> None:
        service = make_async()
        await _serve_doubles(service)
        async with make_async() as client:
            answers = await asyncio.gather(
                *(client.request("aio/double", "double.ask", {"n": n}, timeout=10)
                  for n in range(20)))
            assert [a.data["n"] for a in answers] == [2 * n for n in range(20)]
            assert all(a.type == "double.result" for a in answers)
            assert len(client.sync._requests.pending) == 0
        await service.stop()

    run(main())


def test_async_requester_sync_responder(make_async: MakeAsync,
                                        make_client: Callable[..., MQTTClient]) -> None:
    service = make_client(start=False)
    service.subscribe("sync/double", lambda m: service.reply(m, "r", {"n": 2 * m.data["n"]}),
                      qos=1)
    service.start(timeout=10)

    async def main() -> None:
        async with make_async() as client:
            answer = await client.request("sync/double", "double.ask", {"n": 5}, timeout=5)
            assert answer.data == {"n": 10}

    run(main())


def test_sync_requester_async_responder(make_async: MakeAsync,
                                        make_client: Callable[..., MQTTClient]) -> None:
    requester = make_client()

    async def main() -> None:
        service = make_async()
        await _serve_doubles(service)
        answer = await asyncio.to_thread(requester.request, "aio/double", "double.ask",
                                         {"n": 7}, 5.0)
        assert answer.data == {"n": 14}
        await service.stop()

    run(main())


def test_request_timeout(make_async: MakeAsync) -> None:
    async def main() -> None:
        async with make_async() as client:
            with pytest.raises(RequestTimeout, match="aio/nobody"):
                await client.request("aio/nobody", "void.ask", {}, timeout=0.3)
            assert len(client.sync._requests.pending) == 0

    run(main())


def test_cancelled_request_leaves_nothing_pending(make_async: MakeAsync,
                                                 make_client: Callable[..., MQTTClient]) -> None:
    held: list[Message] = []
    holder = make_client(start=False)
    holder.subscribe("aio/hold", held.append, qos=1)
    holder.start(timeout=10)

    async def main() -> None:
        async with make_async() as client:
            early = asyncio.create_task(client.request("aio/hold", "hold", {"n": 0}, 30))
            await asyncio.sleep(0)  # started, probably still sending
            early.cancel()
            task = asyncio.create_task(client.request("aio/hold", "hold", {"n": 1}, 30))
            await until(lambda: len(client.sync._requests.pending) == 1
                        and any(m.data["n"] == 1 for m in held))
            task.cancel()
            for cancelled in (early, task):
                with pytest.raises(asyncio.CancelledError):
                    await cancelled
            assert len(client.sync._requests.pending) == 0
            late = next(m for m in held if m.data["n"] == 1)
            holder.reply(late, "hold.result", {}).wait(5)
            await until(lambda: client.stats().late_replies >= 1)

    run(main())


def test_the_loop_keeps_ticking_while_awaiting(make_async: MakeAsync) -> None:
    """Each await that really waits lets a busy ticker task run: no blocking call on the loop."""
    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        async def ticked(awaitable: Any) -> int:
            before = ticks
            await awaitable
            return ticks - before

        tick_task = asyncio.create_task(ticker())
        handled = asyncio.Event()
        handler_ticks: list[int] = []
        client = make_async()

        @client.subscribe("aio/tick", qos=1)
        async def on_tick(msg: Message) -> None:
            handler_ticks.append(await ticked(client.publish_event("aio/tock", "tock", {})))
            handled.set()

        try:
            assert await ticked(client.start()) > 0
            publish_ticks = [await ticked(client.publish_event("aio/tick", "tick", {"n": n}))
                             for n in range(10)]
            assert await ticked(handled.wait()) >= 0
            await until(lambda: len(handler_ticks) == 10)
            request = client.request("aio/nobody", "void.ask", {}, timeout=0.2)
            with pytest.raises(RequestTimeout):
                await ticked(request)
            stop_ticks = await ticked(client.stop())
        finally:
            tick_task.cancel()
        assert all(t > 0 for t in publish_ticks), publish_ticks
        assert all(t > 0 for t in handler_ticks), handler_ticks
        assert stop_ticks > 0

    run(main())


def test_example_runs(broker: Broker) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    env["MQTT_URL"] = broker.url
    example = Path(__file__).parents[2] / "examples" / "async_service.py"
    out = subprocess.run([sys.executable, str(example)], env=env, capture_output=True,
                         text=True, timeout=45, check=False)
    assert out.returncode == 0, out.stderr
    assert "llm says: olleh, srat, klaw" in out.stdout


_ASYNC_SERVICE = """
import asyncio, sys
from tars_mqtt import MQTTConfig
from tars_mqtt.aio import AsyncMQTTClient

async def main() -> None:
    client = AsyncMQTTClient(MQTTConfig(url=sys.argv[1], client_id=sys.argv[2]))
    await client.run_forever()
    print("clean exit", flush=True)

asyncio.run(main())
"""


@pytest.mark.timeout(40)
def test_run_forever_stops_cleanly_on_sigterm(broker: Broker,
                                              make_config: Callable[..., MQTTConfig]) -> None:
    client_id = "aio-forever"
    events: list[str] = []
    ready, shutdown = threading.Event(), threading.Event()

    def on_health(msg: Message) -> None:
        events.append(msg.data["event"])
        (ready if msg.data["event"] == "ready" else shutdown).set()

    with MQTTClient(make_config(enable_heartbeat=False)) as watcher:
        watcher.subscribe(f"system/health/{client_id}", on_health, qos=1)
        proc = subprocess.Popen([sys.executable, "-c", _ASYNC_SERVICE, broker.url, client_id],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert ready.wait(20), "the async service never published ready"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err.decode(errors="replace")
        assert b"clean exit" in out
        assert shutdown.wait(5)
    assert events == ["ready", "shutdown"]  # never the "offline" will
