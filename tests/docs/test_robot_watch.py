"""The safety check itself: it catches a program that would harm a running robot."""

from __future__ import annotations

from pathlib import Path

from tars_mqtt.testing import Broker

from .support import RobotWatch, run_program

UNSAFE = '''
import os
from tars_mqtt import MQTTClient

client = MQTTClient.from_env(client_id="movement").start()          # a real id
client.publish_event("movement/command", "movement.command", {"action": "wave"}).wait(5)
os._exit(0)                                                          # no clean stop
'''

SAFE = '''
from tars_mqtt import MQTTClient

with MQTTClient.from_env(client_id="example-safe") as client:
    client.publish_event("example/command", "movement.command", {"action": "wave"}).wait(5)
'''


def watched(code: str, broker: Broker, tmp_path: Path, **flags: bool) -> list[str]:
    program = tmp_path / "program.py"
    program.write_text(code)
    watch = RobotWatch(broker)
    try:
        assert run_program(program, broker).returncode == 0
        return watch.problems(**flags)
    finally:
        watch.stop()


def test_an_unsafe_program_is_caught(broker: Broker, tmp_path: Path) -> None:
    problems = watched(UNSAFE, broker, tmp_path)
    assert len(problems) == 3, problems
    took, sent, left = problems
    assert "took a real service's client id: ['movement']" in took
    assert "['movement/command']" in sent
    assert "{'movement': 'offline'}" in left  # its last will: health would fail


def test_a_safe_program_passes(broker: Broker, tmp_path: Path) -> None:
    assert watched(SAFE, broker, tmp_path) == []
