"""``tars-mqtt health``: listen to health and heartbeats, judge, print, exit 0 or 1."""

from __future__ import annotations

import argparse
import json
import threading
import time

from ..envelope import Message
from ..signals import stop_on_signals
from ._args import UsageError
from ._common import FAILED, OK, Output
from ._connect import client_for
from ._health import HEALTH_FILTER, KEEPALIVE_FILTER, HealthBook, Row, render

__all__ = ["health", "verdict"]


def verdict(rows: list[Row]) -> bool:
    """All clients judged are healthy, and there is at least one."""
    judged = [r for r in rows if r.judged]
    return bool(judged) and all(r.healthy for r in judged)


def report(rows: list[Row], as_json: bool) -> str:
    """The table (with a note on the clients left out), or one JSON line per client."""
    if as_json:
        return "\n".join(json.dumps(r.to_json()) for r in rows)
    judged = [r for r in rows if r.judged]
    text = render(judged) if judged else "no running client publishes health on system/health/#"
    left_out = [r.client for r in rows if not r.judged]
    if left_out:
        text += (f"\n({len(left_out)} stopped cleanly, not judged; --all shows them:"
                 f" {', '.join(left_out)})")
    return text


def health(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise UsageError(f"--wait must not be negative, got {args.wait:g}")
    book = HealthBook(args.stale_after, time.monotonic())
    done = threading.Event()
    out = Output()
    rows: list[Row] = []

    def on_message(msg: Message) -> None:
        book.add(msg, time.monotonic())

    def judge() -> list[Row]:
        return book.rows(time.monotonic(), time.time(), args.clients, stopped=args.all)

    with client_for(args) as client:
        client.subscribe(HEALTH_FILTER, on_message, qos=1, raw=True)
        client.subscribe(KEEPALIVE_FILTER, on_message, qos=0, raw=True)
        book.since = time.monotonic()
        restore = stop_on_signals(done)
        try:
            done.wait(args.wait)  # the retained health arrives right after SUBACK
            while True:
                rows = judge()
                if not args.watch:
                    if not any(r.waiting and r.judged for r in rows) or done.is_set():
                        break
                    book.changed.clear()  # wait for heartbeats, at most until stale_after
                    book.changed.wait(min(0.25, book.since + args.stale_after
                                          - time.monotonic() + 0.01))
                    continue
                if args.json:
                    _print(out, report(rows, True))
                else:
                    screen = "\x1b[H\x1b[2J" if out.escape else ""
                    out.line(f"{screen}{time.strftime('%H:%M:%S')}  health of"
                             f" {len(rows)} clients (every {args.interval:g} s, Ctrl-C"
                             f" ends)\n{report(rows, False)}")
                if out.gone or done.wait(args.interval):
                    break
        finally:
            restore()
    if not args.watch:
        _print(out, report(rows, args.json))
    return OK if verdict(rows) else FAILED


def _print(out: Output, text: str) -> None:
    if text:  # no client in --json: no line at all, rather than an empty one
        out.line(text)
