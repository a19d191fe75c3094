"""``tars-mqtt sub``: print what matches, in one of four shapes, until told to stop."""

from __future__ import annotations

import argparse
import threading
import time
from collections import deque
from collections.abc import Callable

from ..envelope import Message
from ..signals import stop_on_signals
from ..topics import matches, validate_filter
from ._args import UsageError
from ._common import FAILED, OK, Output, fail, validate, wait_for_stop
from ._connect import client_for
from ._format import compile_format
from ._show import SHORT, json_line, message_line

__all__ = ["RETAINED_QUIET", "sub"]

# --retained-only: the broker sends what it keeps right after the SUBACK; once nothing
# came for this long, it has sent it all (a live message ends the command sooner).
RETAINED_QUIET = 0.5

Render = Callable[[Message, bool], bytes]


def renderer(args: argparse.Namespace) -> Render:
    """The shape of one message on stdout, as bytes (checked before connecting)."""
    if args.no_newline and not (args.format or args.payload_only):
        raise UsageError("-N/--no-newline goes with -F or --payload-only")
    if args.json:
        return lambda m, escape: (json_line(m) + "\n").encode("utf-8")
    if args.format is not None or args.payload_only:
        try:
            render = compile_format("%p" if args.payload_only else args.format)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        end = b"" if args.no_newline else b"\n"
        return lambda m, escape: render(m, escape) + end
    limit = None if args.full else SHORT
    return lambda m, escape: (message_line(m, limit=limit) + "\n").encode("utf-8")


class _Shown:
    """Which messages were shown: a message matching two filters is shown once."""

    def __init__(self) -> None:
        # Envelopes are known by id; raw payloads by the object, so under MQTT 5 a raw
        # payload on two overlapping filters (one copy per subscription) shows twice.
        self._seen: deque[object] = deque(maxlen=256)

    def first_time(self, msg: Message) -> bool:
        key: object = msg if msg.envelope is None else msg.envelope.id
        if any(k is key or (isinstance(k, str) and k == key) for k in self._seen):
            return False
        self._seen.append(key)
        return True


def sub(args: argparse.Namespace) -> int:
    filters = [*args.filters, *args.filter_options]
    if not filters:
        raise UsageError("the following arguments are required: FILTER (or -t FILTER)")
    for topic_filter in [*filters, *args.filter_out]:
        validate(validate_filter, topic_filter)
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    render = renderer(args)
    out = Output()
    shown_ids = _Shown()
    lock = threading.Lock()
    done = threading.Event()
    shown = 0
    last = time.monotonic()

    def on_message(msg: Message) -> None:
        nonlocal shown, last
        with lock:
            last = time.monotonic()
            if args.retained_only and not msg.retain:
                done.set()  # the broker has sent what it keeps (even if -T hides this one)
            if done.is_set() or any(matches(f, msg.topic) for f in args.filter_out):
                return
            if (args.no_retained and msg.retain) or not shown_ids.first_time(msg):
                return
            if not out.write(render(msg, out.escape)):
                done.set()
                return
            shown += 1
            if args.count is not None and shown >= args.count:
                done.set()

    with client_for(args) as client:
        for topic_filter in filters:
            client.subscribe(topic_filter, on_message, qos=args.qos, raw=True)
        last = time.monotonic()
        if args.retained_only:
            _until_quiet(done, lambda: last, args.timeout)
        else:
            wait_for_stop(done, args.timeout)
    if args.count is not None and shown < args.count:
        return fail(f"{shown} of {args.count} messages within {args.timeout} s", FAILED)
    return OK


def _until_quiet(done: threading.Event, last: Callable[[], float],
                 timeout: float | None) -> None:
    """Until ``done``, a signal, ``timeout``, or no message for ``RETAINED_QUIET`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    restore = stop_on_signals(done)
    try:
        while True:
            now = time.monotonic()
            left = last() + RETAINED_QUIET - now
            if deadline is not None:
                left = min(left, deadline - now)
            if left <= 0 or done.wait(left):
                return
    finally:
        restore()
