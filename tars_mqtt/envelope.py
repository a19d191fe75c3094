"""What travels: the JSON envelope and its strict codec, ``Inbound`` as paho handed a
message over, and the ``Message`` handlers receive.

Encoding is on the hot path, so it builds the wire dict by hand and lets ujson write it;
``dataclasses-json`` serialises dataclass payloads and gives ``Envelope`` its
``to_dict``/``from_dict``/``to_json`` for users who want them. Both directions hold to strict
JSON (:mod:`~tars_mqtt.strictjson`): a payload from the network never makes the decoder
raise, and nothing a strict peer would refuse is ever sent.

An ``Inbound`` is decoded once, lazily, on the first worker that needs it, and it is
acknowledged to the broker (QoS 1/2) only when every consumer is done with it: the network
thread that routed it and each subscription it was queued for. So a message the broker
considers delivered has been handled, dropped by an explicit policy, or skipped as a
duplicate, never merely queued.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from dataclasses_json import dataclass_json

from . import strictjson
from .stats import Counters, suppressed

__all__ = ["Envelope", "Inbound", "Message", "decode_envelope", "encode_payload", "fast_new",
           "to_data"]

log = logging.getLogger("tars_mqtt")

_T = TypeVar("_T")

_MAX_ID = 256  # envelope ids are dedup keys: a flood of huge ones must not fill memory
_REQUIRED: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("id", str),
    ("type", str),
    ("ts", (int, float)),
    ("source", str),
    ("data", dict),
)


@dataclass_json
@dataclass(frozen=True)
class Envelope:
    """One message on the wire: who sent what, when, and what it answers."""

    type: str
    source: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: float = field(default_factory=time.time)
    correlate: str | None = None
    reply_to: str | None = None
    seq: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent; optional fields are left out when empty (older consumers)."""
        wire: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "ts": self.ts,
            "source": self.source,
            "data": self.data,
        }
        if self.correlate:
            wire["correlate"] = self.correlate
        if self.reply_to:
            wire["reply_to"] = self.reply_to
        if self.seq is not None:
            wire["seq"] = self.seq
        return wire

    def encode(self) -> bytes:
        """The UTF-8 JSON sent.

        Raises:
            ValueError: naming the field that holds NaN, an infinity, an integer too large
                for a float, or text that is not valid UTF-8.
        """
        return strictjson.dumps(self.to_wire())


def to_data(data: Any) -> dict[str, Any]:
    """Accept a dict, a dataclasses-json model, or a plain dataclass as envelope ``data``."""
    if data is None:
        return {}
    if isinstance(data, dict):
        return data
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict):
        return cast(dict[str, Any], to_dict(encode_json=True))
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return dataclasses.asdict(data)
    raise TypeError(f"data must be a dict or a dataclass, got {type(data).__name__}")


def encode_payload(payload: bytes | str | dict[str, Any] | list[Any] | None) -> bytes:
    """Raw payloads for ``publish``: bytes as they are, str as UTF-8, dict/list as JSON.

    Raises:
        TypeError: any other type.
        ValueError: text that is not valid UTF-8, or JSON a strict peer would refuse.
    """
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        try:
            return payload.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("cannot send the payload: text is not valid UTF-8"
                             " (a lone surrogate)") from None
    if isinstance(payload, dict | list):
        return strictjson.dumps(payload)
    raise TypeError(f"payload must be bytes, str, dict or list, got {type(payload).__name__}")


def decode_envelope(payload: bytes) -> tuple[Envelope | None, Any, str | None]:
    """Return ``(envelope, json_value, error)``; never raises, whatever the bytes.

    ``json_value`` is the parsed JSON even when it is not an envelope, so raw-JSON
    publishers still give handlers usable ``data``; ``error`` says why it is no envelope.
    JSON that strict peers refuse (NaN, infinities, integers too large for a float, text
    that is not valid UTF-8) is an error with no ``json_value``.
    """
    if not payload:
        return None, None, "empty payload"
    value, error = strictjson.loads(payload)
    if error is not None:
        return None, None, error
    if not isinstance(value, dict):
        return None, value, f"JSON {type(value).__name__}, not an object"
    for name, kind in _REQUIRED:
        item = value.get(name)
        if not isinstance(item, kind) or isinstance(item, bool):
            return None, value, f"field {name!r} missing or not {_kind_name(kind)}"
    if len(value["id"]) > _MAX_ID:
        return None, value, f"field 'id' is longer than {_MAX_ID} characters"
    seq = value.get("seq")
    envelope = fast_new(
        Envelope,
        id=value["id"],
        type=value["type"],
        ts=float(value["ts"]),
        source=value["source"],
        data=value["data"],
        correlate=_opt_str(value.get("correlate")),
        reply_to=_opt_str(value.get("reply_to")),  # as sent: reply() checks it is a topic
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
    )
    return envelope, value, None


def fast_new(cls: type[_T], **values: Any) -> _T:
    """A frozen dataclass built without its ``__init__``, for the per-message path.

    The generated ``__init__`` sets each field through ``object.__setattr__`` (~1.5 µs for
    ``Message``); this fills ``__dict__`` at once. Every field must be given; the result is
    equal to the constructor's and still refuses assignment.
    """
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return "a number" if isinstance(kind, tuple) else f"a {kind.__name__}"


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Message:
    """What a handler receives.

    ``data`` is the envelope's data, else the parsed JSON, else ``None``. ``correlate`` is
    the envelope's, else MQTT 5 correlation data. ``decode_error`` says why ``envelope`` is None.
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    envelope: Envelope | None = None
    data: Any = None
    correlate: str | None = None
    reply_to: str | None = None
    decode_error: str | None = None
    received_at: float = 0.0

    @property
    def text(self) -> str:
        """The payload as text; undecodable bytes shown as U+FFFD rather than raising."""
        return self.payload.decode("utf-8", errors="replace")

    @property
    def type(self) -> str | None:
        return self.envelope.type if self.envelope else None


Settle = Callable[["Inbound"], None]


class Inbound:
    """One message as paho gave it, until every consumer is done with it.

    ``mid`` and ``link`` (which connection it came on) let the transport acknowledge it on
    the right connection; ``on_done`` is that acknowledgement, None for QoS 0.
    """

    __slots__ = ("topic", "payload", "qos", "retain", "correlation", "response_topic",
                 "received_at", "mid", "link", "_message", "_lock", "_counted", "_owed",
                 "_on_done")

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool,
                 correlation: str | None = None, response_topic: str | None = None, *,
                 mid: int = 0, link: int = 0, on_done: Settle | None = None) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.correlation = correlation
        self.response_topic = response_topic
        self.received_at = time.monotonic()
        self.mid = mid
        self.link = link
        self._message: Message | None = None
        self._lock = threading.Lock()
        self._counted = False
        self._owed = 1  # the routing thread's own hold, released once it has queued it
        self._on_done = on_done

    # Acknowledgement ------------------------------------------------------------------
    def hold(self, count: int = 1) -> None:
        """``count`` more consumers will each ``release()`` it."""
        if self._on_done is not None:
            with self._lock:
                self._owed += count

    def release(self) -> None:
        """One consumer is done (handled, dropped or skipped); the last one acknowledges."""
        if self._on_done is None:
            return
        with self._lock:
            self._owed -= 1
            on_done = self._on_done if self._owed == 0 else None
            if on_done is not None:
                self._on_done = None
        if on_done is not None:
            on_done(self)

    def abandon(self) -> None:
        """Never acknowledge it: it was not handled, so the broker must send it again."""
        with self._lock:
            self._on_done = None

    # Decoding -------------------------------------------------------------------------
    def message(self, counters: Counters, *, raw: bool = False) -> Message:
        """The decoded message; a non-envelope counts as one decode error, unless every
        consumer asking for it is a ``raw`` subscription that expects no envelope."""
        with self._lock:
            if self._message is None:
                envelope, value, error = decode_envelope(self.payload)
                self._message = fast_new(
                    Message, topic=self.topic, payload=self.payload, qos=self.qos,
                    retain=self.retain,
                    envelope=envelope, data=envelope.data if envelope else value,
                    correlate=(envelope.correlate if envelope else None) or self.correlation,
                    reply_to=(envelope.reply_to if envelope else None) or self.response_topic,
                    decode_error=error, received_at=time.time(),
                )
            error = self._message.decode_error
            if error is not None and not raw and not self._counted:
                self._counted = True
                quiet = counters.add_logged("decode_errors")
                if quiet is not None:
                    log.warning("message on %r is not an envelope (%s); handlers get it raw%s",
                                self.topic, error, suppressed(quiet))
            return self._message

