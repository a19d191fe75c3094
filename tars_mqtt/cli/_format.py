"""``sub -F FORMAT``: mosquitto_sub's format strings, compiled once, applied per message.

Pure: a format compiles to a list of pieces, each a function of the message, so a bad
sequence is refused before connecting and the output is tested without a broker. With
``escape`` (stdout is a terminal) text from the wire goes through :func:`safe`; piped, the
payload is written as the bytes that arrived, as mosquitto_sub writes it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from ..envelope import Message
from ._show import safe

__all__ = ["Formatter", "compile_format"]

Piece = Callable[[Message, bool], bytes]
Formatter = Callable[[Message, bool], bytes]

_BACKSLASH = {"\\": b"\\", "0": b"\0", "a": b"\a", "e": b"\x1b", "n": b"\n", "r": b"\r",
              "t": b"\t", "v": b"\v"}


def _text(value: str | None, escape: bool) -> bytes:
    text = value or ""
    return (safe(text) if escape else text).encode("utf-8", errors="backslashreplace")


def _payload(msg: Message, escape: bool) -> bytes:
    if not escape:
        return msg.payload
    return safe(msg.payload.decode("utf-8", errors="backslashreplace")).encode("utf-8")


def _data(msg: Message, escape: bool) -> bytes:
    if msg.data is None:
        return _payload(msg, escape)
    text = json.dumps(msg.data, ensure_ascii=escape, separators=(",", ":"), default=str)
    return text.encode("utf-8")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def _json(msg: Message, as_json: bool) -> bytes:
    out: dict[str, Any] = {"tst": _iso(msg.received_at), "topic": msg.topic, "qos": msg.qos,
                           "retain": int(msg.retain), "payloadlen": len(msg.payload)}
    value: Any = msg.payload.decode("utf-8", errors="backslashreplace")
    if as_json and msg.payload:
        with contextlib.suppress(ValueError):  # not JSON: a string rather than broken JSON
            value = json.loads(msg.payload)
    out["payload"] = value
    return json.dumps(out, separators=(",", ":")).encode("ascii")


def _envelope_field(name: str) -> Piece:
    def piece(msg: Message, escape: bool) -> bytes:
        env = msg.envelope
        return _text(None if env is None else getattr(env, name), escape)
    return piece


_PERCENT: dict[str, Piece] = {
    "%": lambda m, e: b"%",
    "t": lambda m, e: _text(m.topic, e),
    "p": _payload,
    "l": lambda m, e: str(len(m.payload)).encode(),
    "q": lambda m, e: str(m.qos).encode(),
    "r": lambda m, e: b"1" if m.retain else b"0",
    "x": lambda m, e: m.payload.hex().encode(),
    "X": lambda m, e: m.payload.hex().upper().encode(),
    "I": lambda m, e: _iso(m.received_at).encode(),
    "U": lambda m, e: f"{m.received_at:.9f}".encode(),
    "j": lambda m, e: _json(m, as_json=False),
    "J": lambda m, e: _json(m, as_json=True),
    "e": _envelope_field("type"),
    "s": _envelope_field("source"),
    "i": _envelope_field("id"),
    "c": lambda m, e: _text(m.correlate, e),
    "d": _data,
}


def _strftime(char: str) -> Piece:
    if char == "@":
        return lambda m, e: b"@"
    if char == "N":
        return lambda m, e: f"{int(round(m.received_at % 1 * 1e9)) % 10**9:09d}".encode()
    if not char.isalpha():
        raise ValueError(f"-F: @{char} is no time sequence (@H, @M, @S, @N, @@...)")
    return lambda m, e: time.strftime(f"%{char}", time.localtime(m.received_at)).encode()


def _literal(text: str) -> Piece:
    data = text.encode("utf-8")
    return lambda m, e: data


def compile_format(fmt: str) -> Formatter:
    """The function that renders one message; ``ValueError`` names a bad sequence."""
    pieces: list[Piece] = []
    literal: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char not in "%@\\":
            literal.append(char)
            i += 1
            continue
        if i + 1 >= len(fmt):
            raise ValueError(f"-F: {char!r} at the end of the format needs a character after it")
        code = fmt[i + 1]
        if char == "\\":
            if code not in _BACKSLASH:
                raise ValueError(f"-F: \\{code} is no escape (\\n, \\t, \\0, \\e, \\\\...)")
            literal.append(_BACKSLASH[code].decode("latin-1"))
        else:
            if literal:
                pieces.append(_literal("".join(literal)))
                literal = []
            if char == "@":
                pieces.append(_strftime(code))
            elif code in _PERCENT:
                pieces.append(_PERCENT[code])
            else:
                raise ValueError(f"-F: %{code} is not known (see tars-mqtt sub --help)")
        i += 2
    if literal:
        pieces.append(_literal("".join(literal)))

    def render(msg: Message, escape: bool) -> bytes:
        return b"".join(piece(msg, escape) for piece in pieces)

    return render
