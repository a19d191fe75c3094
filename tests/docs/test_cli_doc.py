"""docs/cli.md's transcripts run as written, and every documented command line parses.

A ```` ```console run ```` block is a shell transcript: ``$ command`` lines are run by
bash, one after the other, with ``tars-mqtt`` from this venv and ``MQTT_URL`` set to a
fresh mosquitto on which a small robot runs (:class:`Robot`); the lines after a command
are its output (stdout and stderr), where ``*`` stands for anything. Every ``tars-mqtt``
command line in any ``sh``/``console`` block of the docs must parse.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.cli._args import UsageError, build_parser
from tars_mqtt.testing import Broker

from .support import Block, blocks, doc_files

CONSOLE = [b for p in doc_files() for b in blocks(p) if b.lang == "console"]
SHELL = [b for p in doc_files() for b in blocks(p) if b.lang in ("sh", "console")]
BIN = str(Path(sys.executable).parent)
ACTIONS = ("wave", "bow")


class Robot:
    """movement (answers movement/command), router (keeps system/state), a stopped wake."""

    def __init__(self, broker: Broker) -> None:
        def config(client_id: str) -> MQTTConfig:
            return MQTTConfig(url=broker.url, client_id=client_id, heartbeat_interval=0.2)

        self.movement = MQTTClient(config("movement"))
        self.movement.subscribe("movement/command", self._on_command, qos=1)
        self.router = MQTTClient(config("router"))
        for client in (self.movement, self.router):
            client.start(timeout=10)
        self.router.publish_event("system/state", "system.state", {"state": "idle"},
                                  retain=True).wait(5)
        with MQTTClient(config("wake")):
            pass  # came and went: its retained health says "shutdown"

    def _on_command(self, msg: Message) -> None:
        action = str(msg.data.get("action")) if isinstance(msg.data, dict) else "?"
        status = {"event": "completed", "action": action} if action in ACTIONS else \
            {"event": "rejected", "action": action, "error": f"unknown action {action!r}"}
        if msg.reply_to:
            self.movement.reply(msg, "movement.status", status)
        else:
            self.movement.publish_event("movement/status", "movement.status", status)

    def stop(self) -> None:
        for client in (self.movement, self.router):
            client.stop(timeout=2)


def transcript(block: Block) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` in order."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"{block.id}: output before the first '$ ' command")
    return steps


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.split("*")) + r"\Z")


def run_transcript(block: Block, broker: Broker, workdir: Path) -> list[list[str]]:
    """Each command's output lines, from one bash that runs them in turn."""
    marker = "@@tars-doc-step@@"
    script = "".join(f"echo {marker}\n{{ {command}\n}} 2>&1\n"
                     for command, _ in transcript(block))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    env.update(MQTT_URL=broker.url, PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}")
    out = subprocess.run(["bash", "--norc", "-c", script], env=env, cwd=workdir,
                         capture_output=True, text=True, timeout=60, check=False)
    chunks = out.stdout.split(marker + "\n")
    assert chunks[0] == "", f"{block.id}: output before the first command: {chunks[0]!r}"
    return [chunk.splitlines() for chunk in chunks[1:]]


@pytest.fixture
def robot(broker: Broker) -> Iterator[Robot]:
    sim = Robot(broker)
    yield sim
    sim.stop()


def test_cli_doc_has_transcripts() -> None:
    assert len([b for b in CONSOLE if b.path == "docs/cli.md"]) >= 6


@pytest.mark.parametrize("block", CONSOLE, ids=lambda b: b.id)
def test_transcript_runs_as_written(block: Block, broker: Broker, robot: Robot,
                                    tmp_path: Path) -> None:
    assert "run" in block.tags, f"{block.id}: a console block is run: tag it `console run`"
    steps = transcript(block)
    outputs = run_transcript(block, broker, tmp_path)
    assert len(outputs) == len(steps)
    for (command, expected), actual in zip(steps, outputs, strict=True):
        assert len(actual) == len(expected) and all(
            _pattern(e).match(a) for e, a in zip(expected, actual, strict=True)), \
            f"{block.id}: `{command}` printed\n" + "\n".join(actual) + \
            "\ninstead of\n" + "\n".join(expected)


_OPERATORS = ("|", "||", "&&", ";", "&", "(", ")", "$(")
_REDIRECTS = (">", ">>", "<", "2>", "2>&1")
_PREFIXES = ("sudo", "env", "exec")


def command_lines(block: Block) -> Iterator[list[str]]:
    """The argument lists of the ``tars-mqtt`` commands in a shell block."""
    text = block.code.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        words: list[str] = []
        at_start, skip_next = True, False
        for token in lexer:
            if skip_next:
                skip_next = False
                continue
            if token in _OPERATORS:
                if words:
                    yield words
                words, at_start = [], True
            elif token in _REDIRECTS:
                skip_next = True  # the file name
            elif words:
                words.append(token)
            elif at_start and token.endswith("tars-mqtt"):
                words = [token]
            elif at_start and not (token in _PREFIXES or re.match(r"\w+=", token)):
                at_start = False  # another program's line
        if words:
            yield words


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_documented_command_lines_parse(block: Block) -> None:
    for words in command_lines(block):
        if any(w in ("COMMAND", "TOPIC", "FILTER...", "CLIENT...") or "..." in w or "<" in w
               for w in words):
            continue  # a synopsis line, not a command
        try:
            build_parser().parse_args(words[1:])
        except UsageError as exc:
            raise AssertionError(f"{block.id}: `{' '.join(words)}`: {exc}") from None
        except SystemExit:
            pass  # --help


def test_the_command_lines_are_found() -> None:
    found = [words for block in SHELL for words in command_lines(block)]
    assert len(found) >= 25, found
    assert ["tars-mqtt", "pub", "example/kept", "-n", "-r"] in found  # after &&
    assert not any(w[0] == "~/.local/share/bash-completion/completions/tars-mqtt"
                   for w in found)
