"""JSON as strict peers read it: finite numbers only, every string valid UTF-8.

ujson reads ``NaN``, ``Infinity``, ``1e400`` (as infinity), 400-digit integers and lone
surrogate escapes (``"\\ud800"``) without complaint, and writes NaN back out. Each of them
then fails later, somewhere else: ``float()`` raises ``OverflowError``, ``str.encode``
raises ``UnicodeEncodeError``, a peer's strict parser rejects the message. So values are
checked once, here, on the way in and on the way out, and the problem names where it is.
"""

from __future__ import annotations

import math
from typing import Any

import ujson

__all__ = ["dumps", "is_utf8", "loads", "problem"]

_MAX_FLOAT_INT = 2**1024  # from here on float(n) raises OverflowError
_FLOAT_DIGITS = len(str(_MAX_FLOAT_INT))


def problem(value: Any, root: str = "") -> str | None:
    """The first value strict JSON cannot carry, named by its path; None when all is well.

    Walks with an explicit stack: ujson nests up to 1024 levels, deeper than Python's
    recursion limit.
    """
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and not is_utf8(item):
                return f"{_name(path)}: text is not valid UTF-8 (a lone surrogate)"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{_name(path)}: {item!r} is not a finite number"
        elif isinstance(item, int):
            if not -_MAX_FLOAT_INT < item < _MAX_FLOAT_INT:
                return f"{_name(path)}: an integer too large for a float"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not key.isascii() and not is_utf8(key):
                    return f"{_name(path)}: a key is not valid UTF-8 (a lone surrogate)"
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def loads(payload: bytes) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why)`` for a payload that is not strict JSON. Never raises."""
    try:
        value = ujson.loads(payload)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        return None, f"not JSON: {exc}"
    why = problem(value)
    return (None, f"not strict JSON: {why}") if why is not None else (value, None)


def dumps(value: Any, what: str = "") -> bytes:
    """UTF-8 JSON of ``value``.

    Raises:
        ValueError: naming the field that holds NaN, an infinity, an integer too large for
            a float, or text that is not valid UTF-8 (``what`` names the whole value).
    """
    try:
        out = ujson.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (OverflowError, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"cannot send {problem(value, what) or f'{what}: {exc}'}") from None
    # ujson writes integers of any size; only a text this long can hold one beyond a float.
    if len(out) > _FLOAT_DIGITS and (why := problem(value, what)) is not None:
        raise ValueError(f"cannot send {why}")
    return out


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be sent: no lone surrogates (undecodable bytes from the OS)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name(path: str) -> str:
    return f"field {path!r}" if path else "the value"
