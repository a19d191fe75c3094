"""An asyncio service on ``tars_mqtt.aio``: coroutine handlers, a stream, request/reply.

    MQTT_URL=mqtt://localhost:1883 python examples/async_service.py

``AsyncMQTTClient`` wraps the threaded client: handlers are coroutines run on this event
loop, ``await publish_event(...)`` returns once the broker acknowledged (QoS 1), and
``await request(...)`` waits for the matching reply without blocking the loop.

Safe next to a running robot: its clients have their own ids and it talks only on
``example/...`` topics, which no service listens to (the robot's own ``movement/command``
would make it move, and a real llm service would answer ``llm/request`` too).
"""

from __future__ import annotations

import asyncio

from tars_mqtt import Message, MQTTConfig
from tars_mqtt.aio import AsyncMQTTClient


async def main() -> None:
    llm = AsyncMQTTClient(MQTTConfig.from_env(client_id="example-async-llm"))

    @llm.subscribe("example/llm/request", qos=1)
    async def on_request(msg: Message) -> None:  # runs on this loop, one message at a time
        await asyncio.sleep(0.01)  # stands in for an HTTP call to the model
        await llm.reply(msg, "llm.response", {"reply": msg.data["text"][::-1]})

    router = AsyncMQTTClient(MQTTConfig.from_env(client_id="example-async-router"))
    async with llm, router:
        async with router.messages("example/movement/#", qos=1) as stream:  # bounded, in order
            await router.publish_event("example/movement/command", "movement.command",
                                       {"action": "wave"})
            await router.publish_event("example/movement/status", "movement.status",
                                       {"event": "completed", "action": "wave"})
            for _ in range(2):
                msg = await asyncio.wait_for(anext(stream), 5)
                print(f"{msg.topic}: {msg.data}")

        answers = await asyncio.gather(*(
            router.request("example/llm/request", "llm.request", {"text": text}, timeout=5)
            for text in ("hello", "tars", "walk")))
        print("llm says:", ", ".join(a.data["reply"] for a in answers))
        print(f"router stats: published={router.stats().published}")


if __name__ == "__main__":
    asyncio.run(main())
