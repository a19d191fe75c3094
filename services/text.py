"""Values from the bus, made safe to log and to send back, and checked for what JSON allows.

Any login may put any JSON on a topic it may write: text with lone surrogates (valid JSON,
not encodable as UTF-8), integers of hundreds of digits, megabytes of text. A service that
echoes such a value in a log line or an answer must neither raise nor flood: :func:`shown`
gives a short, escaped, always-encodable form. :func:`value_problem` finds what the
robot's strict JSON does not carry (non-finite or float-overflowing numbers, unencodable
text) anywhere inside a payload, without recursion.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

__all__ = ["clean", "encodable", "sendable", "shown", "value_problem"]

_FLOAT_MAX = sys.float_info.max
_BIG_INT_BITS = 1024  # beyond this an int is described, not printed (it overflows a float)
_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> bool:
    """Whether ``text`` can be sent as UTF-8 (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sendable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD: foreign text (an HTTP
    endpoint's JSON) made sendable without losing the rest of it."""
    return text if encodable(text) else _SURROGATE.sub("\ufffd", text)


def clean(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates escaped: safe to send and log."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return cut if encodable(cut) else cut.encode("utf-8", "backslashreplace").decode("utf-8")


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` escaped and cut to about ``limit`` characters, for logs and answers."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            value.bit_length() > _BIG_INT_BITS:
        return f"<an integer of about {int(value.bit_length() * math.log10(2))} digits>"
    if isinstance(value, str) and len(value) > limit:  # repr of the cut, never of it all
        return repr(value[:limit])[:limit] + f"... ({len(value)} characters)"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints within containers beyond str() limits
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def value_problem(value: Any) -> str | None:
    """What in ``value`` (walked through dicts and lists) strict JSON cannot carry, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int):
            if not -_FLOAT_MAX <= item <= _FLOAT_MAX:
                return f"the number {shown(item)} is too large"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{item!r} is not a finite number"
        elif isinstance(item, str):
            if not encodable(item):
                return f"the text {shown(item)} is not valid UTF-8"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None
