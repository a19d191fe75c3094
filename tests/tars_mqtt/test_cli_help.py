"""``tars-mqtt --help`` is the manual: every option, output, exit status, environment."""

from __future__ import annotations

import argparse

import pytest

from tars_mqtt.cli import main
from tars_mqtt.cli._args import build_parser
from tars_mqtt.cli._completion import _commands

PARSER = build_parser()
COMMANDS = _commands(PARSER)


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def options_of(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings]


def test_the_top_level_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["--help"], capsys)
    for name in COMMANDS:
        assert f"    {name} " in text, name
    for section in ("exit status:", "environment:", "examples:", "docs/cli.md"):
        assert section in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_is_a_manual_page(command: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text([command, "--help"], capsys)
    for option in options_of(COMMANDS[command]):
        assert option in text, f"{command} --help does not show {option}"
    assert "exit status:" in text and "examples:" in text
    if command != "completion":
        assert "environment:" in text and "MQTT_URL" in text
        assert "connection (before or after the command):" in text


def test_sub_help_lists_every_format_sequence(capsys: pytest.CaptureFixture[str]) -> None:
    from tars_mqtt.cli._format import _PERCENT

    text = help_text(["sub", "--help"], capsys)
    for code in _PERCENT:
        assert f"%{code}" in text, code
