"""``tars-mqtt``: publish, watch, check health and make requests from a shell.

::

    tars-mqtt pub TOPIC [--type T] [--data JSON | --raw TEXT] [--qos Q] [--retain]
    tars-mqtt sub FILTER... [--json] [--qos Q] [--count N] [--timeout S]
    tars-mqtt health [CLIENT...] [--wait S] [--stale-after S] [--watch]
    tars-mqtt request TOPIC --type T [--data JSON] [--timeout S] [--json]

Every command reads ``MQTT_URL`` and friends (see :class:`~tars_mqtt.MQTTConfig`), takes
``--url``, connects as ``tars-mqtt-cli-<pid>`` with health and heartbeat off (the
command is no service), and fails with one line on stderr. Exit codes: 0 fine; 1 the
thing asked about failed (a client not ok or stale, no reply, no ack, too few messages);
2 bad input, bad configuration or no broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ..client import MQTTClient
from ..config import MQTTConfig
from ..envelope import Message
from ..errors import ConfigError, MQTTError, PublishError, RequestTimeout
from ..topics import validate_filter, validate_topic
from ._args import PROG, UsageError, build_parser
from ._health import HEALTH_FILTER, KEEPALIVE_FILTER, HealthBook, Row, render
from ._show import SHORT, json_line, message_line

__all__ = ["main"]

OK, FAILED, USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else OK
    command = _COMMANDS[args.command]
    with _logging(args.verbose):
        try:
            return command(args)
        except (UsageError, ConfigError) as exc:
            return _fail(str(exc))
        except MQTTError as exc:  # ConnectError, SubscribeError: no usable broker
            return _fail(str(exc))
        except BrokenPipeError:  # `tars-mqtt sub ... | head`
            _drop_stdout()
            return OK


def _fail(message: str, code: int = USAGE) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


# Commands --------------------------------------------------------------------------------
def _pub(args: argparse.Namespace) -> int:
    _validate(validate_topic, args.topic)
    if args.raw is not None and args.type is not None:
        raise UsageError("--type describes an envelope; --raw sends the text as it is")
    data = _json_object("--data", args.data)
    with _client(args) as client:
        if args.raw is not None:
            handle = client.publish(args.topic, args.raw, qos=args.qos, retain=args.retain)
        else:
            handle = client.publish_event(args.topic, args.type or "cli.message", data,
                                          qos=args.qos, retain=args.retain)
        try:
            handle.wait(args.timeout)
        except PublishError as exc:
            return _fail(str(exc), FAILED)
    return OK


def _sub(args: argparse.Namespace) -> int:
    for topic_filter in args.filters:
        _validate(validate_filter, topic_filter)
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    limit = None if args.full else SHORT
    show: Callable[[Message], str] = (
        json_line if args.json else (lambda m: message_line(m, limit=limit)))
    # A message matching two of the filters arrives once per subscription (MQTT 5) or is
    # handed to both (3.1.1): show it once. Envelopes are known by id; raw payloads by the
    # object, so under MQTT 5 a raw payload on two overlapping filters shows twice.
    seen: deque[object] = deque(maxlen=256)
    lock = threading.Lock()
    done = threading.Event()
    shown = 0

    def on_message(msg: Message) -> None:
        nonlocal shown
        with lock:
            key: object = msg if msg.envelope is None else msg.envelope.id
            if done.is_set() or any(k is key or (isinstance(k, str) and k == key)
                                    for k in seen):
                return
            seen.append(key)
            try:
                print(show(msg), flush=True)
            except (BrokenPipeError, ValueError):  # reader gone, or stdout closed
                _drop_stdout()
                done.set()
                return
            shown += 1
            if args.count is not None and shown >= args.count:
                done.set()

    with _client(args) as client:
        for topic_filter in args.filters:
            client.subscribe(topic_filter, on_message, qos=args.qos, raw=True)
        _wait(done, args.timeout)
    if args.count is not None and shown < args.count:
        return _fail(f"{shown} of {args.count} messages within {args.timeout} s", FAILED)
    return OK


def _health(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise UsageError(f"--wait must not be negative, got {args.wait:g}")
    book = HealthBook(args.stale_after, time.monotonic())
    done = threading.Event()
    rows: list[Row] = []

    def on_message(msg: Message) -> None:
        book.add(msg, time.monotonic())

    with _client(args) as client:
        client.subscribe(HEALTH_FILTER, on_message, qos=1, raw=True)
        client.subscribe(KEEPALIVE_FILTER, on_message, qos=0, raw=True)
        book.since = time.monotonic()
        with _signals(done):
            done.wait(args.wait)  # the retained health arrives right after SUBACK
            while True:
                rows = book.rows(time.monotonic(), time.time(), args.clients)
                if not args.watch:
                    if not any(r.waiting for r in rows) or done.is_set():
                        break
                    book.changed.clear()  # wait for heartbeats, at most until stale_after
                    book.changed.wait(min(0.25, book.since + args.stale_after
                                          - time.monotonic() + 0.01))
                    continue
                screen = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
                print(f"{screen}{time.strftime('%H:%M:%S')}  health of {len(rows)} clients"
                      f" (every {args.interval:g} s, Ctrl-C ends)\n{_table(rows)}", flush=True)
                if done.wait(args.interval):
                    break
    if not args.watch:
        print(_table(rows), flush=True)
    return OK if rows and all(r.healthy for r in rows) else FAILED


def _table(rows: list[Row]) -> str:
    return render(rows) if rows else "no client has published health on system/health/#"


def _request(args: argparse.Namespace) -> int:
    _validate(validate_topic, args.topic)
    data = _json_object("--data", args.data)
    with _client(args) as client:
        try:
            reply = client.request(args.topic, args.type, data, timeout=args.timeout,
                                   qos=args.qos)
        except RequestTimeout as exc:
            return _fail(str(exc), FAILED)
    print(json_line(reply) if args.json else message_line(reply, limit=None), flush=True)
    return OK


# Plumbing ----------------------------------------------------------------------------------
def _validate(check: Callable[[str], str], value: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _drop_stdout() -> None:
    """The reader of our stdout left: send the rest to /dev/null, so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (captured in tests)
        pass


def _json_object(option: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option}: must be a JSON object, got {type(value).__name__}")
    return value


def _config(args: argparse.Namespace) -> MQTTConfig:
    """``MQTT_*`` from the environment, then the options; never the service's identity."""
    cli_id = args.client_id or f"tars-mqtt-cli-{os.getpid()}"
    base = MQTTConfig.from_env(client_id=cli_id)
    changes: dict[str, Any] = dict(client_id=cli_id, enable_health=False,
                                   enable_heartbeat=False, workers=1, clean_start=True,
                                   session_expiry=0)
    if base.source == base.client_id:  # MQTT_SOURCE_NAME unset: say who really sent it
        changes["source"] = cli_id
    if args.url:
        changes["url"] = args.url
    try:
        return base.replace(**changes)
    except ConfigError as exc:
        if exc.field in ("url", "client_id"):
            raise UsageError(f"--{exc.field.replace('_', '-')}{str(exc)[len(exc.field):]}"
                             ) from None
        raise


@contextmanager
def _client(args: argparse.Namespace) -> Iterator[MQTTClient]:
    client = MQTTClient(_config(args))
    client.start(timeout=args.connect_timeout)
    try:
        yield client
    finally:
        client.stop(timeout=2.0)


def _wait(done: threading.Event, timeout: float | None) -> None:
    """Until ``done``, SIGINT/SIGTERM, or ``timeout`` seconds."""
    with _signals(done):
        done.wait(timeout)


@contextmanager
def _signals(done: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end the command cleanly (set ``done``) instead of a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _HideRawWarnings(logging.Filter):
    """The command shows non-envelope payloads itself; the client's warning is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is not an envelope" not in str(record.msg)


@contextmanager
def _logging(verbose: int) -> Iterator[None]:
    logger = logging.getLogger("tars_mqtt")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    handler.addFilter(_HideRawWarnings())
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logger.addHandler(handler)
    logger.propagate = False  # one line per problem, in the command's own format
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "pub": _pub, "sub": _sub, "health": _health, "request": _request,
}
