"""The one clock of tars_mqtt and hw: the real one waits, the manual one only counts."""

from __future__ import annotations

import ast
import sys
import threading
from pathlib import Path

import pytest

import tars_mqtt.timing
from tars_mqtt.timing import Clock, ManualClock, MonotonicClock

ROOT = Path(__file__).resolve().parents[2]


def test_both_clocks_are_the_protocol() -> None:
    clocks: list[Clock] = [MonotonicClock(), ManualClock()]
    for clock in clocks:
        assert isinstance(clock.now(), float)


def test_manual_sleep_and_wait_move_time_without_waiting() -> None:
    clock = ManualClock(10.0)
    event = threading.Event()
    clock.sleep(0.5)
    assert clock.wait(event, 2.0) is False
    assert clock.now() == pytest.approx(12.5)
    event.set()
    assert clock.wait(event, 2.0) is True  # set: a real wait returns at once
    assert clock.now() == pytest.approx(12.5)
    clock.sleep(-1)
    assert clock.now() == pytest.approx(12.5)
    assert clock.steps == 4


def test_on_step_runs_before_the_event_is_checked() -> None:
    event = threading.Event()
    clock = ManualClock(on_step=lambda n: event.set() if n == 2 else None)
    assert clock.wait(event, 1.0) is False
    assert clock.wait(event, 1.0) is True
    assert clock.time == pytest.approx(1.0)


def test_real_wait_returns_when_the_event_is_set() -> None:
    event = threading.Event()
    threading.Timer(0.01, event.set).start()
    assert MonotonicClock().wait(event, 30.0) is True  # far below 30 s: only an early return
    MonotonicClock().sleep(-1)  # a negative sleep is no sleep


def test_the_clock_module_needs_only_the_standard_library() -> None:
    """hw takes its clock from here, so importing it must not need the MQTT client."""
    tree = ast.parse(Path(tars_mqtt.timing.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_one_clock_in_the_tree() -> None:
    """No second Clock/ManualClock pair grows back in another package."""
    found = []
    for package in ("tars_mqtt", "hw", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [f"{path.relative_to(ROOT)}:{node.name}" for node in ast.walk(tree)
                      if isinstance(node, ast.ClassDef) and node.name.endswith("Clock")]
    assert found == ["tars_mqtt/timing.py:Clock", "tars_mqtt/timing.py:MonotonicClock",
                     "tars_mqtt/timing.py:ManualClock"]
