"""The chat-completions client against a real local SSE server: streams, retries, breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.llm_http import Endpoint, EndpointError, Secret, delta_of, sse_data, stream_chat
from tars_mqtt.timing import Backoff
from tests.support.openai_server import OpenAIServer, Reply, running

KEY = "sk-test-very-secret-key"
ASK = [{"role": "user", "content": "hello?"}]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with running() as s:
        yield s


def endpoint(server: OpenAIServer, **fields: Any) -> Endpoint:
    fields.setdefault("backoff", Backoff(min_delay=0.01, max_delay=0.5))
    return Endpoint(f"{server.url}/chat/completions", "tiny", Secret(KEY), **fields)


def collect(ep: Endpoint, delays: list[float] | None = None) -> tuple[list[str], Exception | None]:
    """The pieces streamed, and the error that ended the stream (or None)."""
    async def sleep(seconds: float) -> None:
        (delays if delays is not None else []).append(seconds)

    async def go() -> tuple[list[str], Exception | None]:
        pieces: list[str] = []
        async with httpx.AsyncClient() as client:
            try:
                async for piece in stream_chat(client, ep, ASK, sleep=sleep):
                    pieces.append(piece)
            except EndpointError as exc:
                return pieces, exc
        return pieces, None

    return asyncio.run(go())


def test_streams_the_pieces_in_order_with_model_messages_and_key(server: OpenAIServer) -> None:
    pieces, error = collect(endpoint(server, max_tokens=50, temperature=0.2))
    assert error is None and "".join(pieces) == "Hello there. I am TARS."
    assert len(pieces) == 6  # one per event, as they came
    [req] = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.body == {"model": "tiny", "messages": ASK, "stream": True, "max_tokens": 50,
                        "temperature": 0.2}
    assert req.headers["Authorization"] == f"Bearer {KEY}"


def test_a_429_then_success_is_retried_after_retry_after(server: OpenAIServer) -> None:
    server.script(Reply(status=429, retry_after=0.3, body='{"error": "slow down"}'))
    delays: list[float] = []
    pieces, error = collect(endpoint(server), delays)
    assert error is None and "".join(pieces) == "Hello there. I am TARS."
    assert len(server.requests) == 2 and len(delays) == 1 and delays[0] >= 0.3


def test_500s_are_retried_then_reported_with_the_status_and_never_the_key(
        server: OpenAIServer) -> None:
    server.default = Reply(status=500, body=f'{{"error": "bad key {KEY}"}}')
    delays: list[float] = []
    pieces, error = collect(endpoint(server, retries=2), delays)
    assert pieces == [] and isinstance(error, EndpointError) and not error.partial
    assert "HTTP 500" in str(error) and "after 3 attempts" in str(error)
    assert KEY not in str(error) and "***" in str(error)
    assert len(server.requests) == 3 and len(delays) == 2
    assert all(0.01 <= d <= 0.5 for d in delays)  # Backoff's bounds


def test_a_4xx_is_not_retried(server: OpenAIServer) -> None:
    server.script(Reply(status=401, body='{"error": {"message": "invalid api key"}}'))
    pieces, error = collect(endpoint(server))
    assert isinstance(error, EndpointError) and "HTTP 401" in str(error)
    assert "invalid api key" in str(error) and len(server.requests) == 1


def test_a_cut_connection_after_some_text_is_a_partial_error_not_a_retry(
        server: OpenAIServer) -> None:
    server.script(Reply(cut_after=2))
    pieces, error = collect(endpoint(server))
    assert pieces == ["Hello", " there"]
    assert isinstance(error, EndpointError) and error.partial
    assert "broke" in str(error) or "ended before" in str(error)
    assert len(server.requests) == 1


def test_a_cut_before_any_text_is_retried(server: OpenAIServer) -> None:
    server.script(Reply(cut_after=0))
    pieces, error = collect(endpoint(server))
    assert error is None and "".join(pieces) == "Hello there. I am TARS."
    assert len(server.requests) == 2


def test_a_server_that_ignores_stream_gives_the_whole_answer(server: OpenAIServer) -> None:
    server.script(Reply(stream=False, tokens=("All", " at once.")))
    assert collect(endpoint(server)) == (["All at once."], None)


def test_a_stalled_stream_times_out_and_nothing_listens_gives_a_connection_error(
        server: OpenAIServer) -> None:
    server.default = Reply(tokens=("late",), interval=2.0)
    pieces, error = collect(endpoint(server, read_timeout=0.2, retries=1))
    assert pieces == [] and isinstance(error, EndpointError) and "timed out" in str(error)
    dead = Endpoint("http://127.0.0.1:9/v1/chat/completions", "tiny", retries=0)
    pieces, error = collect(dead)
    assert isinstance(error, EndpointError) and "connection failed" in str(error)


def test_cancelling_the_consumer_closes_the_stream_at_once(server: OpenAIServer) -> None:
    server.default = Reply(tokens=tuple(f" t{n}" for n in range(200)), interval=0.02)

    async def go() -> list[str]:
        pieces: list[str] = []
        first = asyncio.Event()

        async def consume() -> None:
            async with httpx.AsyncClient() as client:
                async for piece in stream_chat(client, endpoint(server), ASK):
                    pieces.append(piece)
                    first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pieces

    pieces = asyncio.run(go())
    server.wait(lambda s: s.abandoned == 1)  # the server saw its client go away
    assert 1 <= len(pieces) < 200


def test_sse_lines_and_chunks_are_read_leniently() -> None:
    assert sse_data("data: {}") == "{}" and sse_data("data:{}") == "{}"
    assert sse_data(": comment") is None and sse_data("event: x") is None and sse_data("") is None
    assert delta_of({"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]}) == \
        ("hi", False)
    assert delta_of({"choices": [{"delta": {}, "finish_reason": "stop"}]}) == ("", True)
    for junk in (None, 3, [], {"choices": "x"}, {"choices": [5]}, {"choices": [{"delta": 7}]},
                 {"choices": [{"delta": {"content": 5}}]}):
        assert delta_of(junk) == ("", False)
    with pytest.raises(EndpointError, match="overloaded"):
        delta_of({"error": {"message": "overloaded"}})


def test_the_key_never_shows_in_a_repr() -> None:
    ep = Endpoint("http://x/v1/chat/completions", "m", Secret(KEY))
    assert KEY not in repr(ep) and KEY not in repr(Secret(KEY)) and KEY not in f"{Secret(KEY)}"
    assert ep.headers()["Authorization"] == f"Bearer {KEY}"
