"""How the command shows messages: one readable line each, or one JSON object each.

Pure functions, so what a terminal receives is tested without a broker. Everything that
came off the wire (topic, type, source, payload) is escaped before it is printed: a
payload cannot move the cursor, clear the screen or reorder text on the operator's terminal.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from ..envelope import Message

__all__ = ["json_line", "message_line", "safe"]

SHORT = 120  # characters of data shown per line unless --full


def safe(text: str) -> str:
    """``text`` with every non-printable character (controls, bidi overrides) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def clock(ts: float) -> str:
    """Local wall-clock time with milliseconds: ``14:03:07.215``."""
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def _short(text: str, limit: int | None) -> str:
    text = safe(text)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def message_line(msg: Message, *, limit: int | None = SHORT) -> str:
    """``time  topic  type  source  data``; non-envelope payloads are marked as such."""
    topic = safe(msg.topic) + (" (retained)" if msg.retain else "")
    env = msg.envelope
    if env is not None:
        body = _short(_compact(env.data), limit)
        if env.correlate:
            body += f"  re:{safe(env.correlate)[:12]}"
        return f"{clock(msg.received_at)}  {topic}  {safe(env.type)}  {safe(env.source)}  {body}"
    if not msg.payload:
        body = "(empty payload)"
    elif msg.data is not None:  # JSON, but no envelope
        body = "json " + _short(_compact(msg.data), limit)
    else:
        body = "raw " + _short(msg.payload.decode("utf-8", errors="backslashreplace"), limit)
    return f"{clock(msg.received_at)}  {topic}  -  -  {body}"


def json_line(msg: Message) -> str:
    """One JSON object: the envelope as sent, or the payload as JSON, text or base64."""
    out: dict[str, Any] = {"time": round(msg.received_at, 6), "topic": msg.topic,
                           "qos": msg.qos, "retain": msg.retain}
    if msg.envelope is not None:
        out["envelope"] = msg.envelope.to_wire()
    elif msg.data is not None:
        out["json"] = msg.data
    else:
        try:
            out["text"] = msg.payload.decode("utf-8")
        except UnicodeDecodeError:
            out["base64"] = base64.b64encode(msg.payload).decode("ascii")
    return json.dumps(out, default=str)
