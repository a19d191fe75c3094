"""``tars-mqtt completion``: the script, run by a real bash, completes what the CLI takes."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

from services.topics import TABLE
from tars_mqtt.cli import main
from tars_mqtt.cli._args import build_parser
from tars_mqtt.cli._completion import script, topics

BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture(scope="module")
def bash_script() -> str:
    return script("bash", build_parser(), topics(["extra/given"]))


def complete(code: str, line: str) -> list[str]:
    """What bash offers for the last word of ``line`` (a trailing space: a new word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    array = " ".join(shlex.quote(w) for w in words)
    program = (f"{code}\nCOMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n"
               "_tars_mqtt; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run([BASH, "--norc", "-c", program], capture_output=True, text=True,
                         timeout=10, check=True, cwd="/")
    return [w for w in out.stdout.splitlines() if w]


def test_the_topic_table_is_declared_by_an_entry_point() -> None:
    assert set(topics()) >= {spec.name for spec in TABLE}
    assert "extra/given" in topics(["extra/given"])


def test_commands_and_top_level_options(bash_script: str) -> None:
    assert set(complete(bash_script, "tars-mqtt ")) >= {"pub", "sub", "health", "request",
                                                       "completion", "--url", "--cafile"}
    assert complete(bash_script, "tars-mqtt he") == ["health"]


def test_topics_for_sub_pub_and_request(bash_script: str) -> None:
    assert complete(bash_script, "tars-mqtt sub move") == [
        "movement/#", "movement/command", "movement/status", "movement/stop"]
    assert complete(bash_script, "tars-mqtt --url mqtt://robot:1883 sub -T system/k") == [
        "system/keepalive/#"]
    assert complete(bash_script, "tars-mqtt pub movement/s") == ["movement/status",
                                                                 "movement/stop"]
    assert complete(bash_script, "tars-mqtt request ll") == sorted(
        spec.name for spec in TABLE if spec.name.startswith("ll"))
    assert complete(bash_script, "tars-mqtt pub -t ext") == ["extra/given"]


def test_options_of_the_command_and_no_guess_for_values(bash_script: str) -> None:
    offered = complete(bash_script, "tars-mqtt health --")
    assert {"--all", "--json", "--watch", "--url", "--password-file"} <= set(offered)
    assert "--payload-only" not in offered
    assert complete(bash_script, "tars-mqtt sub --url ") == []
    assert complete(bash_script, "tars-mqtt completion ") == ["bash", "zsh"]


def test_files_for_file_options(bash_script: str) -> None:
    assert "/etc/hostname" in complete(bash_script, "tars-mqtt sub --cafile /etc/hostn")


def test_zsh_loads_the_same_function_through_bashcompinit() -> None:
    zsh = script("zsh", build_parser(), topics())
    bash = script("bash", build_parser(), topics())
    assert zsh.splitlines()[1] == "autoload -U +X bashcompinit && bashcompinit"
    assert zsh.splitlines()[2:] == bash.splitlines()[1:]


def test_the_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash", "--topic", "my/topic"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("complete -F _tars_mqtt tars-mqtt\n") and "my/topic" in out
    assert main(["completion", "fish"]) == 2


def test_importing_the_cli_does_not_import_the_services() -> None:
    probe = ("import sys, tars_mqtt, tars_mqtt.cli;"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'hw')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.strip() == "[]"
