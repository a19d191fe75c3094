"""The ``tars-mqtt`` command line: every option, where it may go, and its help text.

Connection options are added afresh to the top-level parser and to every command's
parser, so they work before or after the command name. (argparse ``parents=`` would share
one action object between the parsers: a default set on one then overwrites, in the
command's namespace, a value given to the other.) Under a command they default to
``SUPPRESS``, so only what was typed there replaces what was typed before it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .. import __version__
from ._help import COMMANDS, EPILOGS, MAIN_DESCRIPTION

__all__ = ["CONNECTION", "FILE_OPTIONS", "PROG", "TOPIC_OPTIONS", "Option", "UsageError",
           "build_parser"]

PROG = "tars-mqtt"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{message} (see {self.prog} --help)")


def positive(text: str) -> float:
    """A number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


@dataclass(frozen=True)
class Option:
    """One connection option: its flags, where it lands, its default, how it is read."""

    flags: tuple[str, ...]
    dest: str
    default: Any
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    action: str = "store"
    extra: dict[str, Any] = field(default_factory=dict)

    def add_to(self, parser: argparse._ActionsContainer, *, suppress: bool) -> None:
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help,
                                  "default": argparse.SUPPRESS if suppress else self.default}
        if self.action == "store":
            kwargs.update(metavar=self.metavar, type=self.type)
        parser.add_argument(*self.flags, action=self.action, **kwargs)


CONNECTION: tuple[Option, ...] = (
    Option(("-L", "--url"), "url", None, "broker URL: mqtt://, mqtts://, ws://, wss://"
           " (default $MQTT_URL, else mqtt://localhost:1883)", "URL"),
    Option(("-i", "--client-id"), "client_id", None,
           "client id (default tars-mqtt-cli-<pid>-<random>; never $MQTT_CLIENT_ID)", "ID"),
    Option(("-u", "--username"), "username", None, "login name (default $MQTT_USERNAME)",
           "USER"),
    Option(("--password-file",), "password_file", None, "read the password from FILE"
           " (default $MQTT_PASSWORD_FILE; there is no --password: it would show in ps)",
           "FILE"),
    Option(("--cafile",), "cafile", None, "CA certificate(s) that signed the broker's"
           " (default $MQTT_TLS_CA, else the system's)", "FILE"),
    Option(("--cert",), "cert", None, "client certificate, with --key (default"
           " $MQTT_TLS_CERT)", "FILE"),
    Option(("--key",), "key", None, "client key, with --cert (default $MQTT_TLS_KEY)",
           "FILE"),
    Option(("--insecure",), "insecure", False, "do not check the broker's host name"
           " against its certificate (the chain is still checked)", action="store_true"),
    Option(("--connect-timeout",), "connect_timeout", 5.0,
           "seconds to wait for the broker (default 5)", "S", positive),
    Option(("-v", "--verbose"), "verbose", 0, "log the client's progress to stderr"
           " (-vv: debug)", action="count"),
)
FILE_OPTIONS = ("--password-file", "--cafile", "--cert", "--key", "-f", "--file")
TOPIC_OPTIONS = ("-t", "--topic", "-T", "--filter-out")


def _connection(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    group = parser.add_argument_group("connection (before or after the command)")
    for option in CONNECTION:
        option.add_to(group, suppress=suppress)


def build_parser() -> _Parser:
    """The ``tars-mqtt`` command line; ``args.command`` names the command."""
    parser = _Parser(prog=PROG, description=MAIN_DESCRIPTION, epilog=EPILOGS["main"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection(parser, suppress=False)
    commands = parser.add_subparsers(title="commands", dest="command", required=True,
                                     metavar="COMMAND", parser_class=_Parser)

    def command(name: str) -> _Parser:
        summary, description = COMMANDS[name]
        sub: _Parser = commands.add_parser(name, help=summary, description=description,
                                           epilog=EPILOGS[name])
        _connection(sub, suppress=True)
        return sub

    _pub(command("pub"))
    _sub(command("sub"))
    _health(command("health"))
    _request(command("request"))
    completion = command("completion")
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                            help="offer TOPIC too (repeatable); the topics installed"
                            " packages declare are always offered")
    return parser


def _pub(pub: argparse.ArgumentParser) -> None:
    pub.add_argument("topic", nargs="?", metavar="TOPIC")
    pub.add_argument("-t", "--topic", dest="topic_option", metavar="TOPIC",
                     help="the topic, as mosquitto_pub takes it (instead of TOPIC)")
    pub.add_argument("--type", help="envelope type (default cli.message)")
    body = pub.add_mutually_exclusive_group()
    body.add_argument("--data", metavar="JSON", help="envelope data, a JSON object")
    body.add_argument("-m", "--raw", metavar="TEXT", help="send TEXT as it is, no envelope")
    body.add_argument("-f", "--file", metavar="FILE", help="send FILE's bytes as one"
                      " message ('-' is stdin); with --type, FILE holds the data JSON")
    body.add_argument("-s", "--stdin", action="store_true", help="send all of stdin as one"
                      " message; with --type, stdin holds the data JSON")
    body.add_argument("-l", "--lines", action="store_true", help="send each line of stdin"
                      " as a message; with --type, each line is one data JSON")
    body.add_argument("-n", "--null", action="store_true", help="send an empty payload"
                      " (with --retain: clears the topic's retained message)")
    _qos(pub, 1)
    pub.add_argument("-r", "--retain", action="store_true", help="ask the broker to keep it")
    pub.add_argument("--timeout", type=positive, default=5.0, metavar="S",
                     help="seconds to wait for the broker's ack (default 5)")
    pub.add_argument("--json", action="store_true", help="print each message sent as one"
                     " JSON line (the envelope with its id)")


def _sub(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("filters", nargs="*", metavar="FILTER")
    sub.add_argument("-t", "--topic", dest="filter_options", action="append", default=[],
                     metavar="FILTER", help="a filter, as mosquitto_sub takes it (repeatable)")
    sub.add_argument("-T", "--filter-out", action="append", default=[], metavar="FILTER",
                     help="do not show messages whose topic matches FILTER (repeatable)")
    shape = sub.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="one JSON object per line")
    shape.add_argument("-F", "--format", metavar="FORMAT",
                       help="mosquitto_sub's -F: %%t topic, %%p payload, ... (see below)")
    shape.add_argument("--payload-only", action="store_true",
                       help="the payload alone, as mosquitto_sub prints it (-F %%p)")
    sub.add_argument("-N", "--no-newline", action="store_true",
                     help="with -F/--payload-only: no end of line after each message")
    sub.add_argument("--full", action="store_true", help="do not shorten data")
    which = sub.add_mutually_exclusive_group()
    which.add_argument("--retained-only", action="store_true", help="only retained"
                       " messages: end at the first live one, or when they stop coming")
    which.add_argument("-R", "--no-retained", action="store_true",
                       help="skip retained messages: only what is published from now on")
    _qos(sub, 0)
    sub.add_argument("-C", "--count", type=int, metavar="N", help="exit after N messages")
    sub.add_argument("-W", "--timeout", type=positive, metavar="S", help="exit after S"
                     " seconds (exit 1 if --count was given and not reached)")


def _health(health: argparse.ArgumentParser) -> None:
    health.add_argument("clients", nargs="*", metavar="CLIENT",
                        help="check only these client ids; a missing or stopped one fails")
    health.add_argument("--all", action="store_true", help="also judge clients that shut"
                        " down cleanly (left out otherwise)")
    health.add_argument("--wait", type=float, default=1.0, metavar="S",
                        help="seconds to collect retained health (default 1)")
    health.add_argument("--stale-after", type=positive, default=15.0, metavar="S",
                        help="a heartbeat older than S seconds is stale (default 15)")
    health.add_argument("--watch", action="store_true", help="refresh until interrupted")
    health.add_argument("--interval", type=positive, default=2.0, metavar="S",
                        help="seconds between refreshes with --watch (default 2)")
    health.add_argument("--json", action="store_true",
                        help="one JSON object per client and line instead of the table")


def _request(request: argparse.ArgumentParser) -> None:
    request.add_argument("topic", metavar="TOPIC")
    request.add_argument("--type", required=True, help="request envelope type")
    request.add_argument("--data", metavar="JSON", help="request data, a JSON object")
    request.add_argument("--reply-topic", metavar="TOPIC", help="ask for the reply on TOPIC"
                         " (a pair such as llm/request -> llm/response) instead of the"
                         " command's own system/reply/<id>")
    _qos(request, 1)
    request.add_argument("-W", "--timeout", type=positive, default=5.0, metavar="S",
                         help="seconds to wait for the reply (default 5)")
    request.add_argument("--json", action="store_true", help="print the reply as JSON")


def _qos(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("-q", "--qos", type=int, choices=(0, 1, 2), default=default,
                        help=f"default {default}")
