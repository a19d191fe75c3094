"""The wake button, driven through its mock pin (pressed = pulled low)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hw import WakeButton

TIMEOUT = 5.0


class Recorder:
    def __init__(self) -> None:
        self.pressed = threading.Event()
        self.held = threading.Event()
        self.presses = 0
        self.holds = 0

    def on_press(self) -> None:
        self.presses += 1
        self.pressed.set()

    def on_hold(self) -> None:
        self.holds += 1
        self.held.set()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def make(factory: Any, rec: Recorder, hold_time: float) -> WakeButton:
    return WakeButton(17, hold_time=hold_time, pin_factory=factory, on_press=rec.on_press,
                      on_hold=rec.on_hold)


@pytest.fixture
def short_hold(factory: Any, rec: Recorder) -> Iterator[WakeButton]:
    with make(factory, rec, hold_time=0.05) as button:
        yield button


def test_short_press_fires_on_press_on_release(factory: Any, rec: Recorder) -> None:
    # hold_time is long so the press cannot become a hold; nothing waits for it
    with make(factory, rec, hold_time=30) as button:
        pin = factory.pin(17)
        pin.drive_low()
        assert button.is_pressed
        assert not rec.pressed.is_set()  # not yet: it might still become a hold
        pin.drive_high()
        assert rec.pressed.wait(TIMEOUT)
        assert (rec.presses, rec.holds) == (1, 0)


def test_long_press_fires_only_on_hold(factory: Any, rec: Recorder,
                                       short_hold: WakeButton) -> None:
    pin = factory.pin(17)
    pin.drive_low()
    assert rec.held.wait(TIMEOUT)
    pin.drive_high()  # release callbacks run synchronously on the mock pin
    assert (rec.presses, rec.holds) == (0, 1)


def test_short_press_after_a_hold_still_counts(factory: Any, rec: Recorder,
                                               short_hold: WakeButton) -> None:
    pin = factory.pin(17)
    pin.drive_low()
    assert rec.held.wait(TIMEOUT)
    pin.drive_high()
    short_hold.hold_time = 30  # the next press cannot become a hold
    pin.drive_low()
    pin.drive_high()
    assert rec.pressed.wait(TIMEOUT)
    assert (rec.presses, rec.holds) == (1, 1)


def test_debounce_time_reaches_the_pin(factory: Any) -> None:
    with WakeButton(17, bounce_time=0.05, pin_factory=factory):
        assert factory.pin(17).bounce == pytest.approx(0.05)
    with WakeButton(17, bounce_time=None, pin_factory=factory):
        assert factory.pin(17).bounce is None


def test_failing_callback_is_logged_not_raised(factory: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    with WakeButton(17, hold_time=30, pin_factory=factory, on_press=boom):
        pin = factory.pin(17)
        with caplog.at_level(logging.ERROR, logger="hw.button"):
            pin.drive_low()
            pin.drive_high()
        assert "on_press callback failed" in caplog.text


def test_close_is_idempotent_and_silences_callbacks(factory: Any, rec: Recorder) -> None:
    button = make(factory, rec, hold_time=30)
    button.close()
    button.close()
    assert button.closed and not button.is_pressed
    pin = factory.pin(17)
    pin.drive_low()
    pin.drive_high()
    assert rec.presses == 0
    with WakeButton(17, pin_factory=factory):  # the pin is free again
        pass
