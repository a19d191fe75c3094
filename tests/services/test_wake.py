"""The wake service's logic: the pure mappings, then the service on mock button/LED pins."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hw import StatusLED, WakeButton
from services.topics import WAKE_EVENT, check_payload
from services.wake import Wake, WakeSettings, handle_button, handle_state
from tars_mqtt import ConfigError

from .support import FakeClient, garbage, message

BUTTON, LED = 17, 23


def test_press_wakes_and_hold_cancels() -> None:
    assert handle_button("press") == {"type": "wake", "source": "button"}
    assert handle_button("hold") == {"type": "cancel", "source": "button"}
    assert check_payload(WAKE_EVENT, handle_button("press")) == []


@pytest.mark.parametrize(("data", "shown", "problem"), [
    ({"state": "listening"}, "listening", None),
    ({"state": "moving"}, "moving", None),
    ({"state": "dancing"}, "error", "unknown state 'dancing'"),
    ({"state": "error"}, "error", "unknown state 'error'"),  # not a state the router sends
    ({"state": 3}, None, "no string 'state'"),
    ({}, None, "no string 'state'"),
    (None, None, "no string 'state'"),
])
def test_led_state_for_system_state(data: Any, shown: str | None, problem: str | None) -> None:
    got_shown, got_problem = handle_state(data)
    assert got_shown == shown
    assert (got_problem is None) if problem is None else (problem in (got_problem or ""))


def test_settings_from_env() -> None:
    s = WakeSettings.from_env({"TARS_WAKE_PIN": "4", "TARS_WAKE_HOLD_TIME": "0.3",
                               "TARS_LED_RGB": "22, 23, 24", "TARS_WAKE_SIMULATE": "yes",
                               "GPIOZERO_PIN_FACTORY": "mock"})
    assert (s.pin, s.hold_time, s.led_rgb, s.simulate) == (4, 0.3, (22, 23, 24), True)
    assert WakeSettings.from_env({}) == WakeSettings()


@pytest.mark.parametrize(("env", "named"), [
    ({"TARS_WAKE_SIMULATE": "1", "GPIOZERO_PIN_FACTORY": "lgpio"}, "needs GPIOZERO_PIN_FACTORY"),
    ({"TARS_WAKE_SIMULATE": "1"}, "needs GPIOZERO_PIN_FACTORY=mock"),
    ({"TARS_WAKE_HOLD_TIME": "long"}, "TARS_WAKE_HOLD_TIME"),
    ({"TARS_LED_RGB": "1,2"}, "TARS_LED_RGB"),
    ({"TARS_WAKE_PIN": "99"}, "TARS_WAKE_PIN"),
])
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        WakeSettings.from_env(env)


@pytest.fixture
def wake(factory: Any) -> Iterator[tuple[Wake, FakeClient]]:
    client = FakeClient()
    # A press a loaded machine stalls (between drive_low and drive_high) longer than the
    # hold time reads as a hold: 0.1 s was seen to; the holds are waited for, not slept.
    button = WakeButton(BUTTON, hold_time=0.5, pin_factory=factory)
    led = StatusLED(LED, pin_factory=factory)
    svc = Wake(client, button, led, sim_pin=factory.pin(BUTTON))  # type: ignore[arg-type]
    yield svc, client
    svc.close()


def test_button_press_and_hold_publish_wake_events(wake: tuple[Wake, FakeClient],
                                                    factory: Any) -> None:
    _, client = wake
    pin = factory.pin(BUTTON)
    pin.drive_low()
    pin.drive_high()
    client.wait_for(lambda p: p.data == {"type": "wake", "source": "button"})
    pin.drive_low()
    client.wait_for(lambda p: p.data == {"type": "cancel", "source": "button"})
    pin.drive_high()
    assert [p.data["type"] for p in client.on("wake/event")] == ["wake", "cancel"]


def test_simulated_press_and_hold_go_through_the_button(wake: tuple[Wake, FakeClient],
                                                         factory: Any) -> None:
    svc, client = wake
    svc.on_simulate(message("wake/simulate", {"action": "press"}))
    svc.on_simulate(message("wake/simulate", {"action": "hold"}))
    svc.on_simulate(message("wake/simulate", {"action": "smash"}))
    svc.on_simulate(garbage("wake/simulate"))
    assert [p.data["type"] for p in client.on("wake/event")] == ["wake", "cancel"]
    assert svc.tally["malformed"] == 2
    assert factory.pin(BUTTON).state  # released: pulled up again


def test_the_led_follows_system_state_and_shows_error_for_an_unknown_one(
        wake: tuple[Wake, FakeClient], factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    svc, _ = wake
    assert svc.led.state == "idle"
    svc.on_state(message("system/state", {"state": "listening"}))
    assert svc.led.state == "listening" and factory.pin(LED).state == 1.0
    with caplog.at_level(logging.ERROR, logger="tars.wake"):
        svc.on_state(message("system/state", {"state": "dancing"}))
    assert svc.led.state == "error"
    assert "unknown state 'dancing'" in caplog.text
    svc.on_state(garbage("system/state", b""))  # a cleared retained message
    svc.on_state(message("system/state", {"mood": "happy"}))
    assert svc.led.state == "error" and svc.tally["malformed"] == 2
    svc.on_state(message("system/state", {"state": "idle"}))
    assert svc.led.state == "idle"


def test_a_failing_publish_never_kills_the_button(wake: tuple[Wake, FakeClient],
                                                   factory: Any) -> None:
    svc, client = wake
    working = client.publish_event
    calls = threading.Event()

    def broken(*args: Any, **kwargs: Any) -> None:
        calls.set()
        raise RuntimeError("broker gone")

    client.publish_event = broken  # type: ignore[method-assign,assignment]
    pin = factory.pin(BUTTON)
    pin.drive_low()
    pin.drive_high()
    assert calls.is_set()
    client.publish_event = working  # type: ignore[method-assign]
    pin.drive_low()
    pin.drive_high()
    client.wait_for(lambda p: p.data.get("type") == "wake")


def test_hostile_states_are_logged_short(wake: tuple[Wake, FakeClient],
                                         caplog: pytest.LogCaptureFixture) -> None:
    svc, _ = wake
    with caplog.at_level(logging.INFO, logger="tars.wake"):
        svc.on_state(message("system/state", {"state": "x" * 1_000_000}))
        svc.on_state(message("system/state", {"state": "\ud800"}))
        svc.on_state(message("system/state", {"state": 10**400}))
    assert svc.led.state == "error" and svc.tally["unknown_state"] == 2
    assert svc.tally["malformed"] == 1
    assert max(len(r.getMessage()) for r in caplog.records) < 300
    assert "'\\ud800'" in caplog.text  # escaped, so the log line can be written


def test_liveness_says_when_the_hardware_is_gone(wake: tuple[Wake, FakeClient]) -> None:
    svc, _ = wake
    assert svc.liveness() is None
    svc.led.close()
    assert svc.liveness() == "the wake button or the status LED has been closed"
    svc.close()
    assert svc.liveness() is None  # closing on purpose is no fault
