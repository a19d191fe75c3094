"""What every command shares: checking input, writing output, waiting for a signal."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..signals import stop_on_signals
from ._args import PROG, UsageError

__all__ = ["FAILED", "OK", "USAGE", "Output", "drop_stdout", "fail", "json_object", "validate",
           "wait_for_stop"]

OK, FAILED, USAGE = 0, 1, 2


def fail(message: str, code: int = USAGE) -> int:
    """Say what went wrong in one line on stderr; returns the exit code."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def validate(check: Callable[[str], str], value: str) -> None:
    """Run a topic or filter check; its ``ValueError`` becomes a usage error."""
    try:
        check(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def json_object(option: str, text: str | None) -> dict[str, Any]:
    """``text`` as a JSON object ({} for None); a usage error naming ``option`` otherwise."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option}: must be a JSON object, got {type(value).__name__}")
    return value


def drop_stdout() -> None:
    """The reader of our stdout left: send the rest to /dev/null, so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (captured in tests)
        pass


class Output:
    """stdout, for text lines and for payload bytes; ``gone`` once the reader left."""

    def __init__(self) -> None:
        self.stream = sys.stdout
        self.escape = self.stream.isatty()  # a terminal: wire text is escaped
        self.gone = False
        self._lock = threading.Lock()

    def line(self, text: str) -> bool:
        return self.write((text + "\n").encode("utf-8", errors="backslashreplace"))

    def write(self, data: bytes) -> bool:
        """Write and flush; False (and ``gone``) when the reader has left."""
        with self._lock:
            if self.gone:
                return False
            try:
                buffer = getattr(self.stream, "buffer", None)
                if buffer is None:
                    self.stream.write(data.decode("utf-8", errors="backslashreplace"))
                else:
                    self.stream.flush()
                    buffer.write(data)
                    buffer.flush()
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # reader gone, or stdout closed
                drop_stdout()
                self.gone = True
                return False
        return True


def wait_for_stop(done: threading.Event, timeout: float | None) -> None:
    """Until ``done``, SIGINT/SIGTERM, or ``timeout`` seconds."""
    restore = stop_on_signals(done)
    try:
        done.wait(timeout)
    finally:
        restore()
