"""The router's asyncio shell in this process, on a real mosquitto: what it keeps per question.

A flood of transcripts (any login allowed on ``stt/final`` can send one) while no LLM
answers must not pile up requests that each wait out their timeout: a new question makes
the older ones stale, so the router asks one question at a time. And a streamed piece
that comes after the whole reply (QoS 0 beside QoS 1, on another subscription) is
counted, never said a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from services.router import Router
from services.router_settings import RouterSettings
from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.aio import AsyncMQTTClient

from .support import Recorder

QUESTIONS = 30


@pytest.mark.timeout(60)
def test_a_flood_of_questions_leaves_one_request_waiting(
        make_config: Callable[..., MQTTConfig], make_client: Callable[..., MQTTClient]) -> None:
    rec = Recorder(make_client())
    settings = RouterSettings(llm_timeout=30, thinking=40, answer_timeout=40)

    async def scene() -> None:
        client = AsyncMQTTClient(make_config(client_id="router"))
        router = Router(client, settings)  # subscribed before start, as the runtime does
        async with client:
            loop = asyncio.create_task(router.run())
            try:
                await asyncio.to_thread(rec.wait, "system/state", state="idle")
                for n in range(QUESTIONS):
                    rec.client.publish_event("stt/final", "stt.final",
                                             {"text": f"question number {n}"})
                asked = await asyncio.to_thread(rec.wait_many, "llm/request", QUESTIONS, 20)
                # every question was asked once; the requests come from one task per
                # question, so their order on the wire is the loop's, not the transcripts'
                assert sorted(m.data["text"] for m in asked) == sorted(
                    f"question number {n}" for n in range(QUESTIONS))
                await asyncio.to_thread(rec.wait_many, "llm/cancel", QUESTIONS - 1, 20)
                async with asyncio.timeout(10):  # the superseded ones end at once
                    while len(router.tasks) > 1:
                        await asyncio.sleep(0.01)
                assert len(router.tasks) == 1
                assert list(router.first_words) == [router.machine.turn]  # the newest
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
                await router.close()
            assert not router.tasks

    asyncio.run(scene())


@pytest.mark.timeout(60)
def test_a_piece_that_comes_after_the_whole_reply_is_counted_and_not_said_again(
        make_config: Callable[..., MQTTConfig], make_client: Callable[..., MQTTClient]) -> None:
    rec = Recorder(make_client())
    llm = make_client(start=False, client_id="llm")
    asked: list[Message] = []

    @llm.subscribe("llm/request", qos=1)
    def answer(msg: Message) -> None:  # the reply first; the piece only once it was said
        asked.append(msg)
        llm.reply(msg, "llm.response", {"reply": "Cats purr."})

    llm.start(timeout=10)

    async def scene() -> None:
        client = AsyncMQTTClient(make_config(client_id="router"))
        router = Router(client, RouterSettings())
        async with client:
            loop = asyncio.create_task(router.run())
            try:
                await asyncio.to_thread(rec.wait, "system/state", state="idle")
                rec.client.publish_event("stt/final", "stt.final", {"text": "tell me of cats"})
                await asyncio.to_thread(rec.wait, "tts/say", text="Cats purr.")
                request: Any = asked[0]
                llm.publish_event("llm/stream", "llm.stream", {
                    "delta": "Cats purr.", "seq": 0, "turn": request.data["turn"]}, qos=0,
                    correlate=request.envelope.id)
                async with asyncio.timeout(10):
                    while router.tally["late_pieces"] < 1:
                        await asyncio.sleep(0.01)
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
                await router.close()
        assert [d["text"] for d in rec.on("tts/say")] == ["Cats purr."]  # said once

    asyncio.run(scene())
