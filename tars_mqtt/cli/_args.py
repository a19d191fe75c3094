"""The ``tars-mqtt`` command line: options shared by every command, and one line per error."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import __version__

__all__ = ["PROG", "UsageError", "build_parser"]

PROG = "tars-mqtt"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def build_parser() -> _Parser:
    """The ``tars-mqtt`` command line; ``args.command`` names the command."""
    common = _Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help="broker URL (default: $MQTT_URL, else mqtt://localhost:1883)")
    common.add_argument("--client-id", default=argparse.SUPPRESS,
                        help="client id (default: tars-mqtt-cli-<pid>)")
    common.add_argument("--connect-timeout", type=_positive, default=argparse.SUPPRESS,
                        metavar="S", help="seconds to wait for the broker (default 5)")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="log the client's progress (-vv: debug)")
    parser = _Parser(prog=PROG, parents=[common],
                     description="Publish, watch, check health and make requests on the TARS"
                     " broker. Exit codes: 0 ok, 1 failed (not ok/stale, no reply, no ack),"
                     " 2 bad input or no broker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(url=None, client_id=None, connect_timeout=5.0, verbose=0)
    commands = parser.add_subparsers(title="commands", dest="command", required=True,
                                     metavar="COMMAND", parser_class=_Parser)

    pub = commands.add_parser("pub", parents=[common], help="publish one message",
                              description="Publish one message (an envelope unless --raw).")
    pub.add_argument("topic")
    pub.add_argument("--type", help="envelope type (default cli.message)")
    body = pub.add_mutually_exclusive_group()
    body.add_argument("--data", metavar="JSON", help="envelope data, a JSON object")
    body.add_argument("--raw", metavar="TEXT", help="send TEXT as it is, no envelope"
                      " ('' with --retain clears a retained message)")
    _qos(pub, 1)
    pub.add_argument("--retain", action="store_true")
    pub.add_argument("--timeout", type=_positive, default=5.0, metavar="S",
                     help="seconds to wait for the broker's ack (default 5)")

    sub = commands.add_parser("sub", parents=[common], help="print messages, one line each",
                              description="Print matching messages: time, topic, type,"
                              " source, data; non-envelope payloads marked json/raw.")
    sub.add_argument("filters", nargs="+", metavar="FILTER")
    sub.add_argument("--json", action="store_true", help="one JSON object per message")
    sub.add_argument("--full", action="store_true", help="do not shorten data")
    _qos(sub, 0)
    sub.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    sub.add_argument("--timeout", type=_positive, metavar="S", help="exit after S seconds"
                     " (exit code 1 if --count was not reached)")

    health = commands.add_parser(
        "health", parents=[common], help="table of client health; exit 1 if any is not ok",
        description="Every client's retained system/health and the freshness of its"
        " system/keepalive. Exit 0 only if all (or all CLIENTs named) are ok and fresh.")
    health.add_argument("clients", nargs="*", metavar="CLIENT",
                        help="check only these client ids; a missing one is a failure")
    health.add_argument("--wait", type=float, default=1.0, metavar="S",
                        help="seconds to collect retained health (default 1)")
    health.add_argument("--stale-after", type=_positive, default=15.0, metavar="S",
                        help="a heartbeat older than S seconds is stale (default 15)")
    health.add_argument("--watch", action="store_true", help="refresh until interrupted")
    health.add_argument("--interval", type=_positive, default=2.0, metavar="S",
                        help="seconds between refreshes with --watch (default 2)")

    request = commands.add_parser("request", parents=[common], help="request and print the"
                                  " reply", description="Publish a request and print the reply"
                                  " that answers it (matched by correlation).")
    request.add_argument("topic")
    request.add_argument("--type", required=True, help="request envelope type")
    request.add_argument("--data", metavar="JSON", help="request data, a JSON object")
    _qos(request, 1)
    request.add_argument("--timeout", type=_positive, default=5.0, metavar="S",
                         help="seconds to wait for the reply (default 5)")
    request.add_argument("--json", action="store_true", help="print the reply as JSON")
    return parser


def _qos(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=default,
                        help=f"default {default}")
