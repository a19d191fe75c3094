"""Streaming chat completions from an OpenAI-compatible endpoint, over httpx.

``stream_chat`` yields the answer's text pieces as the server-sent events come. Before the
first piece, a 429, a 5xx, a refused or cut connection or a timeout is retried after a
``tars_mqtt.timing.Backoff`` delay (``Retry-After`` honoured up to its ceiling); after the
first piece nothing is retried (the pieces are already out), the error is raised. The API
key travels only in the ``Authorization`` header: no repr, log line or error carries it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tars_mqtt.timing import Backoff

from .text import sendable

__all__ = ["Endpoint", "EndpointError", "Secret", "delta_of", "endpoint_name", "sse_data",
           "stream_chat"]

log = logging.getLogger("tars.llm")
Sleep = Callable[[float], Awaitable[None]]


class Secret:
    """A value that never shows itself in a repr, str or f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class EndpointError(Exception):
    """The endpoint did not answer (the message says how: status, timeout, a cut stream).

    ``partial`` is True when some text had already been yielded.
    """

    def __init__(self, message: str, *, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: ``url`` is the full ``.../chat/completions`` address."""

    url: str
    model: str
    api_key: Secret | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 20.0  # between two pieces of the stream
    max_tokens: int = 256
    temperature: float | None = None
    retries: int = 2
    backoff: Backoff = Backoff(min_delay=0.5, max_delay=8.0)

    def body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True,
                                "max_tokens": self.max_tokens}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.reveal()}"
        return headers


def sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line; None for comments, other fields and blanks."""
    if not line.startswith("data:"):
        return None
    value = line[5:]
    return value[1:] if value.startswith(" ") else value


def delta_of(chunk: Any) -> tuple[str, bool]:
    """``(text, finished)`` of one streamed chunk (or of a whole non-streamed answer).

    Raises:
        EndpointError: the chunk is an error object.
    """
    if not isinstance(chunk, dict):
        return "", False
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise EndpointError(f"the endpoint reported an error: {sendable(str(message)[:200])}")
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", False
    choice = choices[0]
    part = choice.get("delta") if isinstance(choice.get("delta"), dict) else choice.get("message")
    text = part.get("content") if isinstance(part, dict) else None
    # json.loads takes "\\ud800" as a lone surrogate, which no MQTT message can carry
    return (sendable(text) if isinstance(text, str) else ""), \
        choice.get("finish_reason") is not None


async def stream_chat(client: httpx.AsyncClient, endpoint: Endpoint,
                      messages: list[dict[str, str]], *, sleep: Sleep | None = None,
                      rng: random.Random | None = None) -> AsyncIterator[str]:
    """The answer's text pieces, as they come.

    Raises:
        EndpointError: every attempt failed, the request was refused (4xx), or the stream
            broke after some text (``partial``).
    """
    sleep = sleep or asyncio.sleep
    timeout = httpx.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout)
    for attempt in range(endpoint.retries + 1):
        pieces = 0
        wait: float | None  # the least delay before a retry; None: not worth retrying
        try:
            async with client.stream("POST", endpoint.url, json=endpoint.body(messages),
                                     headers=endpoint.headers(), timeout=timeout) as response:
                problem, wait = await _refusal(response, endpoint)
                if problem is None:
                    async for text in _pieces(response):
                        pieces += 1
                        yield text
                    return
        except httpx.TransportError as exc:
            if pieces:
                raise EndpointError(f"the stream broke: {_describe(exc)}", partial=True) \
                    from None
            problem, wait = f"{endpoint_name(endpoint)}: {_describe(exc)}", 0.0
        except EndpointError as exc:
            exc.partial = pieces > 0
            raise
        if wait is None:
            raise EndpointError(problem)
        if attempt == endpoint.retries:
            raise EndpointError(f"{problem} (after {attempt + 1} attempts)")
        delay = max(endpoint.backoff.delay(attempt, rng), wait)
        log.warning("%s; retrying in %.2f s", problem, delay)
        await sleep(delay)


def endpoint_name(endpoint: Endpoint) -> str:
    """The endpoint's address without any user or password, for messages."""
    url = httpx.URL(endpoint.url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


async def _refusal(response: httpx.Response,
                   endpoint: Endpoint) -> tuple[str | None, float | None]:
    """``(problem, wait)``: None when the answer is coming; ``wait`` None = do not retry."""
    status = response.status_code
    if status < 400:
        return None, None
    body = (await response.aread())[:300].decode("utf-8", errors="replace")
    if endpoint.api_key is not None:
        body = body.replace(endpoint.api_key.reveal(), "***")
    problem = f"{endpoint_name(endpoint)} answered HTTP {status}: {' '.join(body.split())}"
    if status == 429 or status >= 500:
        return problem, _retry_after(response, endpoint.backoff.max_delay)
    return problem, None


def _retry_after(response: httpx.Response, ceiling: float) -> float:
    try:
        return min(ceiling, max(0.0, float(response.headers.get("retry-after", "0"))))
    except ValueError:
        return 0.0


async def _pieces(response: httpx.Response) -> AsyncIterator[str]:
    if "json" in response.headers.get("content-type", "") and \
            "event-stream" not in response.headers.get("content-type", ""):
        try:  # a server that ignored "stream": the whole answer at once
            text, _ = delta_of(json.loads(await response.aread()))
        except ValueError:
            raise EndpointError("the endpoint sent a body that is not JSON") from None
        if text:
            yield text
        return
    finished = False
    async for line in response.aiter_lines():
        data = sse_data(line)
        if data is None:
            continue
        if data.strip() == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            log.warning("an event that is not JSON was skipped: %.60r", data)
            continue
        text, done = delta_of(chunk)
        finished = finished or done
        if text:
            yield text
    if not finished:
        raise EndpointError("the stream ended before the answer was finished")


def _describe(exc: httpx.TransportError) -> str:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    detail = str(exc) or type(exc).__name__
    return f"{kind} ({detail[:120]})"
