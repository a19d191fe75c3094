"""The wake button: a short press wakes TARS, a long press (hold) does something else.

A short press is reported on *release*, so that a long press reports only the hold.
gpiozero calls back on its own threads; callbacks should hand off, not work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from gpiozero import Button
from gpiozero.pins import Factory

from .errors import HardwareError
from .pins import resolve_pin_factory

__all__ = ["WakeButton"]

log = logging.getLogger(__name__)

Callback = Callable[[], object]


class WakeButton:
    """A push button between ``pin`` and ground (internal pull-up), debounced.

    Args:
        pin: BCM GPIO number (17 on TARS).
        hold_time: seconds pressed before ``on_hold`` fires.
        bounce_time: debounce time in seconds, or ``None``.
        pin_factory: gpiozero pin factory; ``None`` = :func:`hw.default_pin_factory`.
        on_press: called after a press shorter than ``hold_time``, on release.
        on_hold: called once a press has lasted ``hold_time``.

    ``on_press`` and ``on_hold`` are attributes and may be replaced at any time.
    """

    def __init__(self, pin: int = 17, *, hold_time: float = 1.5, bounce_time: float | None = 0.05,
                 pin_factory: Factory | None = None, on_press: Callback | None = None,
                 on_hold: Callback | None = None) -> None:
        self.on_press = on_press
        self.on_hold = on_hold
        self._lock = threading.Lock()
        self._held = False
        self._closed = False
        try:
            self._button: Any = Button(pin, pull_up=True, bounce_time=bounce_time,
                                       hold_time=hold_time, pin_factory=resolve_pin_factory(
                                           pin_factory))
        except Exception as exc:
            raise HardwareError(f"wake button: cannot use GPIO{pin}: {exc}") from exc
        self._button.when_pressed = self._pressed
        self._button.when_held = self._was_held
        self._button.when_released = self._released

    @property
    def is_pressed(self) -> bool:
        return not self._closed and bool(self._button.is_pressed)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def hold_time(self) -> float:
        """Seconds a press must last to count as a hold (takes effect on the next press)."""
        return float(self._button.hold_time)

    @hold_time.setter
    def hold_time(self, seconds: float) -> None:
        self._button.hold_time = seconds

    def _pressed(self) -> None:
        with self._lock:
            self._held = False

    def _was_held(self) -> None:
        with self._lock:
            # gpiozero's hold thread can lose a race with a release; trust the pin.
            if self._held or not self._button.is_pressed:
                return
            self._held = True
        self._call(self.on_hold, "on_hold")

    def _released(self) -> None:
        with self._lock:
            was_held, self._held = self._held, False
        if not was_held:
            self._call(self.on_press, "on_press")

    @staticmethod
    def _call(callback: Callback | None, what: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # never let a user callback kill gpiozero's thread
            log.exception("wake button %s callback failed", what)

    def close(self) -> None:
        """Release the pin and stop calling back. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self.on_press = self.on_hold = None
        self._button.close()

    def __enter__(self) -> WakeButton:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
