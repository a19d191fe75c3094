"""Status LED: the pattern per state (pure), and what the mock pins show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hw import PATTERNS, STATES, HardwareError, StateError, StatusLED, pattern_for

TIMEOUT = 5.0


def blinked(start: int) -> Callable[[list[float]], bool]:
    """The pin went fully on, off and on again after index ``start``."""
    def check(values: list[float]) -> bool:
        want = [1.0, 0.0, 1.0]
        for v in values[start:]:
            if want and v == want[0]:
                want.pop(0)
        return not want
    return check


def faded(start: int) -> Callable[[list[float]], bool]:
    """The pin passed through in-between brightness after index ``start``."""
    return lambda values: any(0.0 < v < 1.0 for v in values[start:])


# --- patterns (pure) ---------------------------------------------------------------------

def test_states() -> None:
    assert STATES == ("idle", "listening", "thinking", "speaking", "moving", "error")
    assert set(PATTERNS) == set(STATES)


def test_pattern_per_state() -> None:
    idle, listening = pattern_for("idle"), pattern_for("listening")
    assert idle.kind == "steady" and 0 < idle.brightness < 0.5
    assert listening.kind == "steady" and listening.brightness == 1.0
    assert pattern_for("thinking").kind == "pulse"
    speaking, moving, error = pattern_for("speaking"), pattern_for("moving"), pattern_for("error")
    assert speaking.kind == moving.kind == error.kind == "blink"
    assert speaking.on_time < moving.on_time and speaking.off_time < moving.off_time
    assert error.on_time <= speaking.on_time
    assert error.color == (1.0, 0.0, 0.0)
    assert len({p.color for p in PATTERNS.values()}) == len(STATES)  # tell them apart on RGB
    for p in PATTERNS.values():
        assert 0 <= p.brightness <= 1 and all(0 <= c <= 1 for c in p.rgb)
        if p.kind != "steady":
            assert p.on_time > 0 and p.off_time > 0


@pytest.mark.parametrize("state", ["bogus", "", None, "IDLE"])
def test_unknown_state_is_a_value_error(state: Any) -> None:
    with pytest.raises(StateError, match=r"unknown LED state .* \(known: idle, listening") as info:
        pattern_for(state)
    assert isinstance(info.value, ValueError)


# --- single PWM LED ----------------------------------------------------------------------

@pytest.fixture
def led(factory: Any) -> Iterator[StatusLED]:
    with StatusLED(23, pin_factory=factory) as status:
        yield status


def test_starts_off(factory: Any, led: StatusLED) -> None:
    assert led.state is None and not led.is_rgb
    assert factory.pin(23).state == 0


def test_steady_states(factory: Any, led: StatusLED) -> None:
    pin = factory.pin(23)
    led.show("idle")
    assert (led.state, pin.state) == ("idle", pytest.approx(0.1))
    led.show("listening")
    assert (led.state, pin.state) == ("listening", 1.0)
    led.off()
    assert (led.state, pin.state) == (None, 0)


@pytest.mark.parametrize("state", ["speaking", "moving", "error"])
def test_blinking_states_blink_in_the_background(factory: Any, led: StatusLED,
                                                 state: str) -> None:
    pin = factory.pin(23)
    start = len(pin.states)
    led.show(state)  # returns at once; the blink goes on without us
    assert led.state == state
    assert pin.wait_for(blinked(start), TIMEOUT)


def test_thinking_pulses_and_a_new_state_replaces_it_at_once(factory: Any,
                                                             led: StatusLED) -> None:
    pin = factory.pin(23)
    led.show("thinking")
    assert pin.wait_for(faded(0), TIMEOUT)
    led.show("idle")  # stops (joins) the pulse thread before setting the level
    assert pin.state == pytest.approx(0.1)
    assert led._led._blink_thread is None


def test_same_state_again_does_not_restart(factory: Any, led: StatusLED) -> None:
    led.show("idle")
    before = len(factory.pin(23).states)
    led.show("idle")
    assert len(factory.pin(23).states) == before


def test_unknown_state_keeps_the_current_one(factory: Any, led: StatusLED) -> None:
    led.show("listening")
    with pytest.raises(StateError):
        led.show("dancing")
    assert (led.state, factory.pin(23).state) == ("listening", 1.0)


def test_close_is_idempotent(factory: Any) -> None:
    led = StatusLED(23, pin_factory=factory)
    led.show("speaking")
    led.close()
    led.close()
    assert led.closed and led.state is None
    with pytest.raises(HardwareError, match="closed"):
        led.show("idle")
    with StatusLED(23, pin_factory=factory):  # the pin is free again
        pass


# --- RGB LED -----------------------------------------------------------------------------

@pytest.fixture
def rgb(factory: Any) -> Iterator[StatusLED]:
    with StatusLED(rgb_pins=(22, 23, 24), pin_factory=factory) as status:
        yield status


def test_rgb_steady_colours(factory: Any, rgb: StatusLED) -> None:
    pins = [factory.pin(p) for p in (22, 23, 24)]
    assert rgb.is_rgb
    rgb.show("idle")
    assert [p.state for p in pins] == pytest.approx([0.1, 0.1, 0.1])
    rgb.show("listening")
    assert [p.state for p in pins] == [0.0, 1.0, 0.0]


def test_rgb_error_blinks_red_only(factory: Any, rgb: StatusLED) -> None:
    red, green, blue = (factory.pin(p) for p in (22, 23, 24))
    start = len(red.states)
    rgb.show("error")
    assert red.wait_for(blinked(start), TIMEOUT)
    assert set(green.values()) == {0.0} and set(blue.values()) == {0.0}


def test_rgb_thinking_pulses(factory: Any, rgb: StatusLED) -> None:
    red = factory.pin(22)
    rgb.show("thinking")
    assert red.wait_for(faded(0), TIMEOUT)
