"""Which pin factory drivers use: gpiozero's own choice, plus the two things it lacks.

gpiozero already decides: a device's ``pin_factory=`` argument, else the process-wide
``gpiozero.Device.pin_factory``, which gpiozero creates once from
``$GPIOZERO_PIN_FACTORY`` (else lgpio, rpigpio, pigpio, native in turn). hw uses exactly
that and adds only:

- mock pins that can do PWM: gpiozero's ``mock`` factory makes plain ``MockPin`` objects
  unless ``$GPIOZERO_MOCK_PIN_CLASS`` names another class, and servos and the status LED
  need PWM, so a shared mock factory of plain pins is given ``MockPWMPin`` (a superset);
- a :class:`PinFactoryError` naming ``GPIOZERO_PIN_FACTORY`` when the factory cannot be
  created, instead of gpiozero's ``BadPinFactory`` (an ``ImportError``) or whatever the
  pin library raised off a Pi, so a service can exit with a configuration error.
"""

from __future__ import annotations

import os
import threading

from gpiozero import Device
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from .errors import PinFactoryError

__all__ = ["ENV_PIN_FACTORY", "default_pin_factory", "resolve_pin_factory"]

ENV_PIN_FACTORY = "GPIOZERO_PIN_FACTORY"  # read by gpiozero itself; named here in errors

_lock = threading.Lock()  # gpiozero's ensure_pin_factory() is not thread-safe


def default_pin_factory() -> Factory:
    """gpiozero's process-wide ``Device.pin_factory``, created on first use.

    Every driver given ``pin_factory=None`` uses it, so with ``mock`` they all see the
    same mock pins (``default_pin_factory().pin(17).drive_low()`` presses the button).

    Raises:
        PinFactoryError: gpiozero cannot create the factory ``$GPIOZERO_PIN_FACTORY``
            names (unknown name, ``lgpio`` off a Pi, no pin library at all).
    """
    with _lock:
        try:
            Device.ensure_pin_factory()
        except Exception as exc:  # BadPinFactory, import errors, no /dev/gpiochip ...
            chosen = os.environ.get(ENV_PIN_FACTORY)
            which = f"{ENV_PIN_FACTORY}={chosen!r}" if chosen else f"{ENV_PIN_FACTORY} unset"
            raise PinFactoryError(f"no usable gpiozero pin factory ({which}): {exc}") from exc
        factory: Factory = Device.pin_factory
        if isinstance(factory, MockFactory) and factory.pin_class is MockPin:
            factory.pin_class = MockPWMPin  # gpiozero documents pin_class as settable
        return factory


def resolve_pin_factory(pin_factory: Factory | None) -> Factory:
    """The factory a driver should use: the explicit one, else :func:`default_pin_factory`."""
    return pin_factory if pin_factory is not None else default_pin_factory()
