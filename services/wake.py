"""tars-wake: the wake button on ``wake/event``, and ``system/state`` on the status LED.

A short press publishes ``{type: "wake", source: "button"}``, a long press (held for
``TARS_WAKE_HOLD_TIME``) ``{type: "cancel", source: "button"}``. The LED follows the
retained ``system/state``; a state it does not know shows ``error`` and is logged.

With ``TARS_WAKE_SIMULATE=1`` (mock pins only) it also takes ``wake/simulate``
``{action: "press"|"hold"}`` and drives its own mock button pin, so a demo or test in
another process presses the button through gpiozero's real ``Button`` path.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hw import PATTERNS, StatusLED, WakeButton, default_pin_factory
from tars_mqtt import ConfigError, Message, MQTTClient

from .common import Tally, env_bool, env_float, env_int, problems, publish
from .runtime import Service, run
from .topics import SYSTEM_STATE, WAKE_EVENT, WAKE_SIMULATE

__all__ = ["Wake", "WakeSettings", "handle_button", "handle_state", "main", "setup"]

log = logging.getLogger("tars.wake")


@dataclass(frozen=True)
class WakeSettings:
    """``TARS_WAKE_PIN`` (17), ``TARS_WAKE_HOLD_TIME`` (1.5 s), ``TARS_LED_PIN`` (23),
    ``TARS_LED_RGB`` (e.g. ``22,23,24``; unset = single LED), ``TARS_WAKE_SIMULATE``."""

    pin: int = 17
    hold_time: float = 1.5
    led_pin: int = 23
    led_rgb: tuple[int, int, int] | None = None
    simulate: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WakeSettings:
        rgb_raw = environ.get("TARS_LED_RGB", "").strip()
        rgb = None
        if rgb_raw:
            parts = rgb_raw.split(",")
            if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
                raise ConfigError(f"TARS_LED_RGB={rgb_raw!r} must be three GPIO numbers: r,g,b")
            rgb = (int(parts[0]), int(parts[1]), int(parts[2]))
        simulate = env_bool(environ, "TARS_WAKE_SIMULATE", False)
        factory = environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower()
        if simulate and factory != "mock":
            raise ConfigError("TARS_WAKE_SIMULATE=1 needs GPIOZERO_PIN_FACTORY=mock: it drives"
                              f" the mock button pin, never a real one (factory {factory!r})")
        return cls(pin=env_int(environ, "TARS_WAKE_PIN", 17, high=27),
                   hold_time=env_float(environ, "TARS_WAKE_HOLD_TIME", 1.5, low=0.05, high=30),
                   led_pin=env_int(environ, "TARS_LED_PIN", 23, high=27), led_rgb=rgb,
                   simulate=simulate)


def handle_button(kind: str) -> dict[str, Any]:
    """The ``wake/event`` data for a button ``press`` or ``hold``."""
    return {"type": "cancel" if kind == "hold" else "wake", "source": "button"}


def handle_state(data: Any) -> tuple[str | None, str | None]:
    """The LED state for ``system/state`` data, and the problem if any.

    A known state shows as itself; an unknown one shows ``error``; data without a
    string ``state`` shows nothing (``None``): it is malformed.
    """
    state = data.get("state") if isinstance(data, dict) else None
    if not isinstance(state, str):
        return None, f"system/state data has no string 'state': {data!r}"
    if state not in PATTERNS or state == "error":
        return "error", f"unknown state {state!r}"
    return state, None


class Wake:
    """The service: button callbacks → ``wake/event``; ``system/state`` → the LED."""

    def __init__(self, client: MQTTClient, button: WakeButton, led: StatusLED, *,
                 sim_pin: Any = None) -> None:
        self.client, self.button, self.led = client, button, led
        self.tally = Tally()
        self._sim_pin = sim_pin
        self._held = threading.Event()
        button.on_press = lambda: self._emit("press")
        button.on_hold = lambda: self._emit("hold")
        led.show("idle")
        client.subscribe(SYSTEM_STATE.name, self.on_state, qos=SYSTEM_STATE.qos)
        if sim_pin is not None:
            client.subscribe(WAKE_SIMULATE.name, self.on_simulate, qos=WAKE_SIMULATE.qos)

    def _emit(self, kind: str) -> None:  # on gpiozero's threads: publish only hands over
        if kind == "hold":
            self._held.set()
        log.info("button %s", kind)
        publish(self.client, WAKE_EVENT, handle_button(kind))

    def on_state(self, msg: Message) -> None:
        shown, problem = handle_state(msg.data if msg.envelope else None)
        if shown is None:
            log.warning("malformed system/state #%d ignored: %s", self.tally.add("malformed"),
                        msg.decode_error or problem)
            return
        if problem:
            self.tally.add("unknown_state")
            log.error("%s: the LED shows error", problem)
        self.led.show(shown)
        log.info("LED shows %s", shown)

    def on_simulate(self, msg: Message) -> None:
        """Press (down, up) or hold (down until the button reports the hold, up) the pin."""
        if problems(msg, WAKE_SIMULATE):
            log.warning("malformed wake/simulate #%d ignored: %s", self.tally.add("malformed"),
                        problems(msg, WAKE_SIMULATE))
            return
        self._held.clear()
        self._sim_pin.drive_low()
        if msg.data["action"] == "hold" and not self._held.wait(self.button.hold_time + 5):
            log.error("simulated hold: the button never reported the hold")
        self._sim_pin.drive_high()

    def close(self) -> None:
        self.button.close()
        self.led.close()


def setup(client: MQTTClient) -> Service:
    """The service on ``client``: TARS_WAKE_*/TARS_LED_* (see WakeSettings)."""
    settings = WakeSettings.from_env()
    button = WakeButton(settings.pin, hold_time=settings.hold_time)
    led = StatusLED(settings.led_pin, rgb_pins=settings.led_rgb)
    factory = default_pin_factory()
    sim_pin = factory.pin(settings.pin) if settings.simulate and factory is not None else None
    service = Wake(client, button, led, sim_pin=sim_pin)

    def close() -> None:
        service.close()
        log.info("wake stopped; counts %s", service.tally.as_dict())

    return Service(close=close)


def main() -> int:
    """``tars-wake``: MQTT_* for the client, TARS_WAKE_*/TARS_LED_* (see WakeSettings)."""
    return run("wake", setup)


if __name__ == "__main__":
    raise SystemExit(main())
