"""``tars-mqtt completion bash|zsh``: a completion script made from the parser itself.

Commands and options come from :func:`build_parser`, so the script never lags behind the
command line. Topics come from the ``tars_mqtt.topics`` entry point group: a package
that has a topic table (the robot's services) declares it there, and it is imported only
when a script is made, never when ``tars_mqtt`` is imported. An entry point names a list
of topic names, of objects with a ``name``, or a function returning either.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from ..topics import validate_topic
from ._args import FILE_OPTIONS, PROG, TOPIC_OPTIONS

__all__ = ["ENTRY_POINTS", "SYSTEM_FILTERS", "script", "topics"]

log = logging.getLogger("tars_mqtt")
ENTRY_POINTS = "tars_mqtt.topics"
SYSTEM_FILTERS = ("system/health/#", "system/keepalive/#", "system/reply/#", "#")


def _names(value: Any) -> Iterable[str]:
    if callable(value):
        value = value()
    for item in value:
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if isinstance(name, str):
            yield name


def topics(extra: Iterable[str] = ()) -> list[str]:
    """Topic names to offer: the declared tables', the ones given, sorted, each once."""
    found = set(extra)
    for point in entry_points(group=ENTRY_POINTS):
        try:
            found.update(_names(point.load()))
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the script
            log.warning("topic table %s (%s) not loaded: %s", point.name, point.value, exc)
    good = []
    for name in sorted(found):
        try:
            good.append(validate_topic(name))
        except ValueError:
            log.warning("not offered for completion: %r is no topic name", name)
    return good


def _filters(names: list[str]) -> list[str]:
    """Topics, plus ``first/#`` for every first level, plus the system filters."""
    firsts = {f"{n.split('/', 1)[0]}/#" for n in names if "/" in n}
    return sorted({*names, *firsts, *SYSTEM_FILTERS})


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """All option strings, and those that take a value."""
    every: list[str] = []
    valued: list[str] = []
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public listing
        every.extend(action.option_strings)
        if action.option_strings and action.nargs != 0:
            valued.extend(action.option_strings)
    return every, valued


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _words(items: Iterable[str]) -> str:
    return shlex.quote(" ".join(items))


def script(shell: str, parser: argparse.ArgumentParser, names: list[str]) -> str:
    """The bash function (zsh loads it through bashcompinit)."""
    commands = _commands(parser)
    top, top_valued = _options(parser)
    valued = set(top_valued)
    cases = []
    for name, sub in commands.items():
        opts, sub_valued = _options(sub)
        valued.update(sub_valued)
        positional = "filters" if name == "sub" else "topics" if name in ("pub", "request") \
            else "shells" if name == "completion" else "none"
        cases.append(f"        {name}) opts={_words(opts)}; positional={positional} ;;")
    other_valued = sorted(valued - set(FILE_OPTIONS) - set(TOPIC_OPTIONS))
    lines = [
        f"# {shell} completion for {PROG}, made by `{PROG} completion {shell}`",
        *(["autoload -U +X bashcompinit && bashcompinit"] if shell == "zsh" else []),
        "_tars_mqtt() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        f"    local commands={_words(commands)}",
        f"    local topics={_words(names)}",
        f"    local filters={_words(_filters(names))}",
        "    local command='' i opts positional",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case " $commands " in *" ${COMP_WORDS[i]} "*) command="${COMP_WORDS[i]}";'
        " break ;; esac",
        "    done",
        '    case "$prev" in',
        f"        {'|'.join(FILE_OPTIONS)}) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;",
        f"        {'|'.join(TOPIC_OPTIONS)})",
        '            if [[ "$command" == sub ]]; then local words="$filters"; else local'
        ' words="$topics"; fi',
        '            COMPREPLY=($(compgen -W "$words" -- "$cur")); return ;;',
        f"        {'|'.join(other_valued)}) COMPREPLY=(); return ;;",
        "    esac",
        '    case "$command" in',
        *cases,
        f"        *) COMPREPLY=($(compgen -W \"$commands {' '.join(top)}\" -- \"$cur\"));"
        " return ;;",
        "    esac",
        '    if [[ "$cur" == -* ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        "    else",
        '        case "$positional" in',
        '            filters) COMPREPLY=($(compgen -W "$filters" -- "$cur")) ;;',
        '            topics) COMPREPLY=($(compgen -W "$topics" -- "$cur")) ;;',
        "            shells) COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\")) ;;",
        "            *) COMPREPLY=() ;;",
        "        esac",
        "    fi",
        "}",
        f"complete -F _tars_mqtt {PROG}",
    ]
    return "\n".join(lines) + "\n"
