"""The asyncio contenders: tars_mqtt's twin (``tars_mqtt.aio``) and aiomqtt, both MQTT 5.

Each is used the way its docs show: the twin with a coroutine handler passed to
``subscribe`` and ``await client.publish_event(...)``; aiomqtt with
``async for message in client.messages`` and ``await client.publish(...)``, given the
same 20 messages in flight and TCP_NODELAY as the others. The waiting loop
(:func:`bench.workers.watch`) runs in a thread, so the event loop does only the
library's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import ujson

from tars_mqtt import Envelope, Message, MQTTConfig
from tars_mqtt.aio import AsyncMQTTClient

from .workers import (
    INFLIGHT,
    TYPE,
    Channel,
    PubSpec,
    Recorder,
    SubSpec,
    apump,
    padding,
    watch,
    wire,
)

__all__ = ["publish_aio", "publish_aiomqtt", "subscribe_aio", "subscribe_aiomqtt"]


def _client_id(role: str, spec: SubSpec | PubSpec) -> str:
    return f"bench-{role}-{spec.lib}-{spec.topic.replace('/', '-')}"


def _aio(role: str, spec: SubSpec | PubSpec) -> AsyncMQTTClient:
    return AsyncMQTTClient(MQTTConfig(url=f"mqtt://{spec.host}:{spec.port}",
                                      client_id=_client_id(role, spec)))


def _aiomqtt(role: str, spec: SubSpec | PubSpec) -> Any:
    import aiomqtt  # the bench extra; absent, this contender's runs fail and say so

    client = aiomqtt.Client(spec.host, spec.port, identifier=_client_id(role, spec),
                            protocol=aiomqtt.ProtocolVersion.V5, max_inflight_messages=INFLIGHT,
                            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    client.pending_calls_threshold = INFLIGHT  # else it warns of every publish in flight
    return client


async def subscribe_aio(spec: SubSpec, rec: Recorder, ch: Channel) -> dict[str, Any]:
    client = _aio("sub", spec)

    async def handler(msg: Message) -> None:
        rec.on_data(msg.data)

    client.subscribe(spec.topic, handler, qos=spec.qos)
    await client.start()  # returns once the SUBACK is in
    try:
        ch.ready.set()
        await asyncio.to_thread(watch, spec, rec, ch)
        return rec.result(dropped=client.stats().dropped)
    finally:
        await client.stop()


async def subscribe_aiomqtt(spec: SubSpec, rec: Recorder, ch: Channel) -> dict[str, Any]:
    async with _aiomqtt("sub", spec) as client:
        await client.subscribe(spec.topic, spec.qos)  # returns once the SUBACK is in

        async def consume() -> None:
            async for message in client.messages:
                rec.on_data(ujson.loads(message.payload)["data"])

        task = asyncio.create_task(consume())
        try:
            ch.ready.set()
            await asyncio.to_thread(watch, spec, rec, ch)
            return rec.result()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def publish_aio(spec: PubSpec, ch: Channel) -> dict[str, Any]:
    client = _aio("pub", spec)
    await client.start()
    topic, qos = spec.topic, spec.qos
    pad = padding(lambda p: len(Envelope(TYPE, client.config.source, {
        "seq": 10_000, "sent": time.monotonic(), "pad": p}, seq=10_000).encode()))

    async def send(seq: int) -> Any:
        return await client.publish_event(topic, TYPE, {"seq": seq, "sent": time.monotonic(),
                                                        "pad": pad}, qos=qos)

    try:
        return await apump(spec, ch, send,
                           lambda: client.publish(f"{topic}/fence", {}, qos=1, timeout=60))
    finally:
        await client.stop()


async def publish_aiomqtt(spec: PubSpec, ch: Channel) -> dict[str, Any]:
    async with _aiomqtt("pub", spec) as client:
        topic, qos = spec.topic, spec.qos
        pad = padding(lambda p: len(wire(10_000, p)))

        async def send(seq: int) -> None:
            await client.publish(topic, wire(seq, pad), qos=qos)

        return await apump(spec, ch, send,
                           lambda: client.publish(f"{topic}/fence", b"{}", qos=1, timeout=60))
