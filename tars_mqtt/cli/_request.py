"""``tars-mqtt request``: one request, its reply printed, the exit code from the reply."""

from __future__ import annotations

import argparse
from typing import Any

from ..envelope import Message
from ..errors import RequestTimeout
from ..topics import validate_topic
from ._common import FAILED, OK, Output, fail, json_object, validate
from ._connect import client_for
from ._show import json_line, message_line, safe

__all__ = ["FAILED_EVENTS", "reply_problem", "request"]

FAILED_EVENTS = frozenset({"rejected", "failed"})


def reply_problem(reply: Message) -> str | None:
    """Why the reply says the request failed: an ``error``, or a rejected/failed ``event``."""
    data: Any = reply.data
    if not isinstance(data, dict):
        return None
    event, error = data.get("event"), data.get("error")
    if event in FAILED_EVENTS or error:
        said = f"event {event!r}" if event in FAILED_EVENTS else "an error"
        return f"the reply says the request failed ({said}: {safe(str(error or '-'))})"
    return None


def request(args: argparse.Namespace) -> int:
    validate(validate_topic, args.topic)
    if args.reply_topic is not None:
        validate(validate_topic, args.reply_topic)
    data = json_object("--data", args.data)
    with client_for(args) as client:
        try:
            reply = client.request(args.topic, args.type, data, timeout=args.timeout,
                                   qos=args.qos, reply_topic=args.reply_topic)
        except RequestTimeout as exc:
            return fail(str(exc), FAILED)
    Output().line(json_line(reply) if args.json else message_line(reply, limit=None))
    problem = reply_problem(reply)
    return fail(problem, FAILED) if problem else OK
