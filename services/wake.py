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
import threading
from typing import Any

from hw import StatusLED, WakeButton, default_pin_factory
from tars_mqtt import Message, MQTTClient

from .common import Tally, problems, publish
from .runtime import Service, run
from .topics import SYSTEM_STATE, WAKE_EVENT, WAKE_SIMULATE
from .wake_logic import WakeSettings, handle_button, handle_state

__all__ = ["Wake", "WakeSettings", "handle_button", "handle_state", "main", "setup"]

log = logging.getLogger("tars.wake")


class Wake:
    """The service: button callbacks → ``wake/event``; ``system/state`` → the LED."""

    def __init__(self, client: MQTTClient, button: WakeButton, led: StatusLED, *,
                 sim_pin: Any = None) -> None:
        self.client, self.button, self.led = client, button, led
        self.tally = Tally()
        self._sim_pin = sim_pin
        self._held = threading.Event()
        self._closing = False
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
        publish(self.client, WAKE_EVENT, handle_button(kind), tally=self.tally)

    def on_state(self, msg: Message) -> None:
        state, problem = handle_state(msg.data if msg.envelope else None)
        if state is None:
            log.warning("malformed system/state #%d ignored: %s", self.tally.add("malformed"),
                        msg.decode_error or problem)
            return
        if problem:
            self.tally.add("unknown_state")
            log.error("%s: the LED shows error", problem)
        self.led.show(state)
        log.info("LED shows %s", state)

    def on_simulate(self, msg: Message) -> None:
        """Press (down, up) or hold (down until the button reports the hold, up) the pin."""
        found = problems(msg, WAKE_SIMULATE)
        if found:
            log.warning("malformed wake/simulate #%d ignored: %s", self.tally.add("malformed"),
                        "; ".join(found))
            return
        self._held.clear()
        self._sim_pin.drive_low()
        if msg.data["action"] == "hold" and not self._held.wait(self.button.hold_time + 5):
            log.error("simulated hold: the button never reported the hold")
        self._sim_pin.drive_high()

    def liveness(self) -> str | None:
        """Why the button or the LED no longer works (gpiozero runs their threads)."""
        if not self._closing and (self.button.closed or self.led.closed):
            return "the wake button or the status LED has been closed"
        return None

    def close(self) -> None:
        self._closing = True
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

    return Service(close=close, liveness=service.liveness)


def main() -> int:
    """``tars-wake``: MQTT_* for the client, TARS_WAKE_*/TARS_LED_* (see WakeSettings)."""
    return run("wake", setup)


if __name__ == "__main__":
    raise SystemExit(main())
