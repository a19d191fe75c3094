"""``tars-mqtt``: publish, watch, check health and make requests from a shell.

::

    tars-mqtt pub TOPIC [--type T] [--data JSON | -m TEXT | -f FILE | -s | -l | -n]
    tars-mqtt sub FILTER... [--json | -F FORMAT | --payload-only] [-T FILTER] [-C N] [-W S]
    tars-mqtt health [CLIENT...] [--all] [--json] [--watch]
    tars-mqtt request TOPIC --type T [--data JSON] [--timeout S] [--json]
    tars-mqtt completion bash|zsh

Every command reads ``MQTT_URL`` and friends (see :class:`~tars_mqtt.MQTTConfig`), takes
the connection options (``--url``, ``--username``, ``--cafile``...) before or after the
command name, connects as ``tars-mqtt-cli-<pid>-<random>`` with health and heartbeat off (the
command is no service), and fails with one line on stderr. Exit codes: 0 fine; 1 the
thing asked about failed (a client not ok or stale, no reply or a failed one, no ack, too
few messages); 2 bad input, bad configuration or no broker.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..errors import ConfigError, MQTTError
from ._args import PROG, UsageError, build_parser
from ._check import health
from ._common import OK, Output, drop_stdout, fail
from ._completion import script, topics
from ._pub import pub
from ._request import request
from ._sub import sub

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return fail(str(exc))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else OK
    command = _COMMANDS[args.command]
    with _logging(args.verbose):
        try:
            return command(args)
        except (UsageError, ConfigError) as exc:
            return fail(str(exc))
        except MQTTError as exc:  # ConnectError, SubscribeError: no usable broker
            return fail(str(exc))
        except BrokenPipeError:  # `tars-mqtt sub ... | head`
            drop_stdout()
            return OK


def _completion(args: argparse.Namespace) -> int:
    Output().line(script(args.shell, build_parser(), topics(args.topic)).rstrip("\n"))
    return OK


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
    "pub": pub, "sub": sub, "health": health, "request": request, "completion": _completion,
}
