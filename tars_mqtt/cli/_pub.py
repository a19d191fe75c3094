"""``tars-mqtt pub``: one message from an option, a file or stdin; or one per stdin line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..envelope import Envelope, Message, decode_envelope
from ..errors import PublishError
from ..topics import validate_topic
from ._args import UsageError
from ._common import FAILED, OK, Output, fail, json_object, validate
from ._connect import client_for
from ._show import json_line

__all__ = ["pub"]

DEFAULT_TYPE = "cli.message"


def _topic(args: argparse.Namespace) -> str:
    if args.topic and args.topic_option:
        raise UsageError("give the topic once: as TOPIC or as -t TOPIC")
    topic: str | None = args.topic or args.topic_option
    if not topic:
        raise UsageError("the following arguments are required: TOPIC (or -t TOPIC)")
    validate(validate_topic, topic)
    return topic


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--file: cannot read {path}: {exc.strerror}") from None


def bodies(args: argparse.Namespace) -> Iterator[tuple[str, bytes]]:
    """``(where it came from, bytes)`` for each message to send, before any is sent."""
    if args.raw is not None:
        yield "--raw", args.raw.encode("utf-8")
    elif args.null:
        yield "--null", b""
    elif args.file is not None:
        yield "--file", _read(args.file)
    elif args.stdin:
        yield "--stdin", sys.stdin.buffer.read()
    elif args.lines:
        for n, line in enumerate(sys.stdin.buffer, 1):
            line = line.rstrip(b"\r\n")
            if line or args.type is None:
                yield f"stdin line {n}", line


def _payloads(args: argparse.Namespace, source: str) -> Iterator[bytes]:
    """Each payload in turn; stdin lines are read (and sent) as they come."""
    if _envelope_only(args):
        data = json_object("--data", args.data)
        yield Envelope(type=args.type or DEFAULT_TYPE, source=source, data=data).encode()
        return
    for where, body in bodies(args):
        if args.type is None:
            yield body
        else:
            data = json_object(where, body.decode("utf-8", errors="replace"))
            yield Envelope(type=args.type, source=source, data=data).encode()


def _envelope_only(args: argparse.Namespace) -> bool:
    """No payload option but (perhaps) --data: one envelope."""
    return not (args.raw is not None or args.null or args.file or args.stdin or args.lines)


def pub(args: argparse.Namespace) -> int:
    topic = _topic(args)
    if (args.raw is not None or args.null) and args.type is not None:
        raise UsageError("--type describes an envelope; --raw and --null send bytes as they are")
    if _envelope_only(args):
        json_object("--data", args.data)  # refused before connecting
    out = Output()
    with client_for(args) as client:
        for payload in _payloads(args, client.config.source):
            handle = client.publish(topic, payload, qos=args.qos, retain=args.retain)
            try:
                handle.wait(args.timeout)
            except PublishError as exc:
                return fail(str(exc), FAILED)
            if args.json:
                out.line(json_line(_sent(topic, payload, args)))
    return OK


def _sent(topic: str, payload: bytes, args: argparse.Namespace) -> Message:
    envelope, value, _ = decode_envelope(payload)
    return Message(topic, payload, qos=args.qos, retain=args.retain, envelope=envelope,
                   data=envelope.data if envelope else value, received_at=time.time())
