"""What every service's handlers share: settings from the environment (re-exported from
:mod:`tars_mqtt.settings`, the one parser), checked payloads,
publishing by a row of the topic table, and counts.

Topic names, QoS and retain flags come from :mod:`services.topics`, so :func:`publish`
takes a row of that table. How a process runs is :mod:`services.runtime`'s.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tars_mqtt import Message, MQTTClient, MQTTError, PublishHandle
from tars_mqtt.settings import env_bool, env_float, env_int

from .text import encodable, shown
from .topics import TopicSpec, check_payload

if TYPE_CHECKING:  # the threaded services need not load the asyncio twin
    from tars_mqtt.aio import AsyncMQTTClient

__all__ = [
    "UNSENDABLE", "StepTimer", "Tally", "answer", "env_bool", "env_float", "env_int",
    "problems", "publish", "reply", "reply_topic_for", "request_id", "unsent",
]

log = logging.getLogger("tars")


def problems(msg: Message, spec: TopicSpec) -> list[str]:
    """Why ``msg`` does not fit its row of the topic table (empty when it does)."""
    envelope = msg.envelope
    if envelope is None:
        return [f"{msg.topic}: not an envelope ({msg.decode_error})"]
    # The client's decoder refuses such text; a service that stores or echoes these
    # fields (SQLite, file names, answers) must not depend on that alone.
    for name in ("id", "source", "type", "correlate", "reply_to"):
        value = getattr(envelope, name)
        if isinstance(value, str) and not encodable(value):
            return [f"{msg.topic}: envelope field {name!r} is not valid UTF-8"]
    return check_payload(spec, msg.data)


def request_id(msg: Message) -> str | None:
    """What an answer to ``msg`` is correlated with: its envelope's id, else the MQTT 5
    correlation data of a request whose envelope did not decode; None: no one to answer."""
    if msg.envelope is not None:
        return msg.envelope.id
    return msg.correlate or None


# What publishing can raise: the client refuses (stopped, offline queue full), or the
# message cannot be encoded (a topic or correlation id taken from a hostile message).
UNSENDABLE = (MQTTError, ValueError, TypeError)


def publish(client: MQTTClient, spec: TopicSpec, data: dict[str, Any],
            correlate: str | None = None, *, tally: Tally | None = None
            ) -> PublishHandle | None:
    """Publish ``data`` on ``spec``'s topic with its event type, QoS and retain flag.

    Never raises: a message that cannot be sent (a stopping client, an unencodable
    ``correlate``) is logged and counted as ``unsent`` in ``tally``, and None returned.
    """
    try:
        return client.publish_event(spec.name, spec.event_type, data, qos=spec.qos,
                                    retain=spec.retain, correlate=correlate)
    except UNSENDABLE as exc:
        unsent(tally, spec.name, exc)
        return None


def reply(client: MQTTClient, request: Message, event_type: str, data: dict[str, Any], *,
          tally: Tally | None = None) -> PublishHandle | None:
    """Answer ``request`` on its ``reply_to``; like :func:`publish`, logged and counted, never
    raised when that topic is no topic (a wildcard, unencodable) or the client refuses."""
    try:
        return client.reply(request, event_type, data)
    except UNSENDABLE as exc:
        unsent(tally, f"reply topic {shown(request.reply_to)}", exc)
        return None


async def answer(client: AsyncMQTTClient, request: Message, spec: TopicSpec,
                 data: dict[str, Any], *, tally: Tally | None = None) -> bool:
    """Answer ``request`` with ``data`` on ``spec``: on its reply topic when
    :func:`reply_topic_for` allows it, else on ``spec``'s topic correlated to it.

    A request whose envelope did not decode is answered too, when MQTT 5 properties say
    where and to what (so the asker learns why instead of waiting out its timeout). Never
    raises; False when there is no one to answer or the answer could not be sent.
    """
    correlate = request_id(request)
    if correlate is None:
        return False
    try:
        if reply_topic_for(request, spec) is not None:
            await client.reply(request, spec.event_type, data, qos=spec.qos)
        else:
            await client.publish_event(spec.name, spec.event_type, data, qos=spec.qos,
                                       correlate=correlate)
    except UNSENDABLE as exc:
        unsent(tally, spec.name, exc)
        return False
    return True


def unsent(tally: Tally | None, where: str, exc: Exception) -> None:
    """Log (shortened, escaped) and count as ``unsent`` a message that could not go."""
    n = tally.add("unsent") if tally is not None else 0
    log.warning("not sent to %s (#%d): %s", where, n, shown(str(exc), 200))


class Tally:
    """Thread-safe counts of what a service saw (``malformed``, ``rejected`` ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str) -> int:
        with self._lock:
            self._counts[name] += 1
            return self._counts[name]

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class StepTimer:
    """How long a thread has been in the one step that must end (a render, a recognition),
    so its liveness can tell a wedged thread (alive, and never to do anything again) from
    an idle one."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self._clock = limit, clock
        self._since: float | None = None

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        self._since = self._clock()
        try:
            yield
        finally:
            self._since = None

    def late(self) -> float | None:
        """Seconds the current step has taken, when that is over ``limit``; else None."""
        since = self._since
        taken = None if since is None else self._clock() - since
        return taken if taken is not None and taken > self.limit else None


def reply_topic_for(msg: Message, spec: TopicSpec) -> str | None:
    """Where a request's answer may go: its ``reply_to`` when that is ``spec``'s topic or a
    client's own reply topic, else None (answer on ``spec`` with ``correlate``).

    A request is anyone's to send: a ``reply_to`` naming another topic (``movement/command``,
    a wildcard) would make the service publish there, so it is never followed.
    """
    target = msg.reply_to
    if target == spec.name:
        return target
    if target and target.startswith("system/reply/") and target.count("/") == 2 and not any(
            c in target for c in "+#\x00"):
        return target
    return None
