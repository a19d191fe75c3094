"""The JSON envelope every tars message travels in, and the ``Message`` handlers receive.

Encoding is on the hot path, so it builds the wire dict by hand and lets ujson write it;
``dataclasses-json`` serialises dataclass payloads and gives ``Envelope`` its
``to_dict``/``from_dict``/``to_json`` for users who want them.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import ujson
from dataclasses_json import dataclass_json

__all__ = ["Envelope", "Message", "decode_envelope", "encode_payload", "fast_new", "to_data"]

_T = TypeVar("_T")

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
        return ujson.dumps(self.to_wire(), ensure_ascii=False).encode("utf-8")


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
    """Raw payloads for ``publish``: bytes as they are, str as UTF-8, dict/list as JSON."""
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, dict | list):
        return ujson.dumps(payload, ensure_ascii=False).encode("utf-8")
    raise TypeError(f"payload must be bytes, str, dict or list, got {type(payload).__name__}")


def decode_envelope(payload: bytes) -> tuple[Envelope | None, Any, str | None]:
    """Return ``(envelope, json_value, error)``; never raises.

    ``json_value`` is the parsed JSON even when it is not an envelope, so raw-JSON
    publishers still give handlers usable ``data``; ``error`` says why it is no envelope.
    """
    if not payload:
        return None, None, "empty payload"
    try:
        value = ujson.loads(payload)
    except (ValueError, TypeError, OverflowError) as exc:
        return None, None, f"not JSON: {exc}"
    if not isinstance(value, dict):
        return None, value, f"JSON {type(value).__name__}, not an object"
    for name, kind in _REQUIRED:
        item = value.get(name)
        if not isinstance(item, kind) or isinstance(item, bool):
            return None, value, f"field {name!r} missing or not {_kind_name(kind)}"
    seq = value.get("seq")
    envelope = fast_new(
        Envelope,
        id=value["id"],
        type=value["type"],
        ts=float(value["ts"]),
        source=value["source"],
        data=value["data"],
        correlate=_opt_str(value.get("correlate")),
        reply_to=_opt_str(value.get("reply_to")),
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
