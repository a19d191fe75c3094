"""The status LED: TARS's state at a glance, on one PWM LED or an RGB LED.

Which pattern each state shows is pure data (:func:`pattern_for`); :class:`StatusLED`
plays it with gpiozero's background blink/pulse threads, so :meth:`StatusLED.show`
never blocks the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from gpiozero import PWMLED, RGBLED
from gpiozero.pins import Factory

from .errors import HardwareError, StateError
from .pins import resolve_pin_factory

__all__ = [
    "PATTERNS",
    "Pattern",
    "STATES",
    "StatusLED",
    "pattern_for",
]

Color = tuple[float, float, float]


@dataclass(frozen=True)
class Pattern:
    """How a state looks.

    ``steady`` shows ``brightness``; ``blink`` is on ``on_time`` s, off ``off_time`` s;
    ``pulse`` fades in over ``on_time`` s and out over ``off_time`` s. An RGB LED shows
    ``color`` scaled by ``brightness``; a single LED ignores the colour.
    """

    kind: Literal["steady", "blink", "pulse"]
    brightness: float = 1.0
    color: Color = (1.0, 1.0, 1.0)
    on_time: float = 0.0
    off_time: float = 0.0

    @property
    def rgb(self) -> Color:
        r, g, b = self.color
        return (r * self.brightness, g * self.brightness, b * self.brightness)


PATTERNS: Mapping[str, Pattern] = MappingProxyType({
    "idle": Pattern("steady", brightness=0.1, color=(1.0, 1.0, 1.0)),
    "listening": Pattern("steady", brightness=1.0, color=(0.0, 1.0, 0.0)),
    "thinking": Pattern("pulse", color=(1.0, 0.5, 0.0), on_time=0.5, off_time=0.5),
    "speaking": Pattern("blink", color=(0.0, 1.0, 1.0), on_time=0.15, off_time=0.15),
    "moving": Pattern("blink", color=(0.0, 0.0, 1.0), on_time=0.5, off_time=0.5),
    "error": Pattern("blink", color=(1.0, 0.0, 0.0), on_time=0.1, off_time=0.1),
})
STATES: tuple[str, ...] = tuple(PATTERNS)


def pattern_for(state: str) -> Pattern:
    """The pattern of ``state``; :class:`StateError` (a ``ValueError``) if unknown."""
    try:
        return PATTERNS[state]
    except (KeyError, TypeError):
        raise StateError(
            f"unknown LED state {state!r} (known: {', '.join(STATES)})") from None


class StatusLED:
    """One PWM LED on ``pin`` (GPIO 23), or an RGB LED on ``rgb_pins`` (e.g. 22, 23, 24).

    Starts off (``state`` is ``None``). Callers that want to show ``error`` for an
    unknown state catch :class:`StateError` themselves.
    """

    def __init__(self, pin: int = 23, *, rgb_pins: tuple[int, int, int] | None = None,
                 pin_factory: Factory | None = None) -> None:
        factory = resolve_pin_factory(pin_factory)
        self._lock = threading.Lock()
        self._state: str | None = None
        self._closed = False
        self._rgb = rgb_pins is not None
        try:
            if rgb_pins is not None:
                red, green, blue = rgb_pins
                self._led: Any = RGBLED(red, green, blue, pin_factory=factory)
            else:
                self._led = PWMLED(pin, pin_factory=factory)
        except Exception as exc:
            where = f"GPIO {rgb_pins}" if rgb_pins is not None else f"GPIO{pin}"
            raise HardwareError(f"status LED: cannot use {where}: {exc}") from exc

    @property
    def state(self) -> str | None:
        """The state last shown, or ``None`` while off."""
        return self._state

    @property
    def is_rgb(self) -> bool:
        return self._rgb

    @property
    def closed(self) -> bool:
        return self._closed

    def show(self, state: str) -> None:
        """Show ``state`` at once; a blink or pulse keeps running in the background.

        Showing the state already shown changes nothing (no restart glitch).

        Raises:
            StateError: unknown state (the LED keeps its current pattern).
            HardwareError: the LED is closed.
        """
        pattern = pattern_for(state)
        with self._lock:
            self._check_open()
            if state == self._state:
                return
            self._play(pattern)
            self._state = state

    def off(self) -> None:
        """Turn the LED off (``state`` becomes ``None``)."""
        with self._lock:
            self._check_open()
            self._led.off()
            self._state = None

    def _check_open(self) -> None:
        if self._closed:
            raise HardwareError("status LED is closed")

    def _play(self, p: Pattern) -> None:
        led = self._led
        if self._rgb:
            if p.kind == "steady":
                led.value = p.rgb
            elif p.kind == "blink":
                led.blink(on_time=p.on_time, off_time=p.off_time, on_color=p.rgb,
                          background=True)
            else:
                led.pulse(fade_in_time=p.on_time, fade_out_time=p.off_time, on_color=p.rgb,
                          background=True)
        elif p.kind == "steady":
            led.value = p.brightness
        elif p.kind == "blink":
            led.blink(on_time=p.on_time, off_time=p.off_time, background=True)
        else:
            led.pulse(fade_in_time=p.on_time, fade_out_time=p.off_time, background=True)

    def close(self) -> None:
        """Stop any pattern and release the pins. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._state = None
            self._led.close()

    def __enter__(self) -> StatusLED:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
