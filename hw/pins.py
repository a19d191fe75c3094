"""Pin factory selection, in one place: explicit argument > environment > gpiozero default.

On the Raspberry Pi the drivers use gpiozero's default factory (lgpio, ...). Everywhere
else (tests, the demo, CI) ``GPIOZERO_PIN_FACTORY=mock`` selects a :class:`MockFactory`
whose pins can do PWM, which gpiozero's own ``mock`` default cannot (servos and the
status LED need PWM).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from .errors import PinFactoryError

__all__ = ["ENV_PIN_FACTORY", "default_pin_factory", "make_pin_factory", "resolve_pin_factory"]

ENV_PIN_FACTORY = "GPIOZERO_PIN_FACTORY"
_ENTRY_POINT_GROUP = "gpiozero_pin_factories"

_shared_lock = threading.Lock()
_shared: tuple[Factory | None] | None = None  # memo: (factory,) once resolved


def _known_names() -> list[str]:
    names = {ep.name.lower() for ep in entry_points(group=_ENTRY_POINT_GROUP)}
    names.add("mock")
    return sorted(names)


def make_pin_factory(
    name: str | None = None, *, environ: Mapping[str, str] = os.environ
) -> Factory | None:
    """Create the pin factory named by ``name``, else by ``$GPIOZERO_PIN_FACTORY``.

    Returns ``None`` when neither is set (or both are empty), meaning "gpiozero's
    default". ``mock`` gives ``MockFactory(pin_class=MockPWMPin)``; other names are
    gpiozero's registered factories (``lgpio``, ``rpigpio``, ``pigpio``, ``native``).

    Raises:
        PinFactoryError: the name is unknown, or the factory cannot be created here
            (e.g. ``lgpio`` off a Pi).
    """
    chosen = name if name is not None else environ.get(ENV_PIN_FACTORY)
    if chosen is None or not chosen.strip():
        return None
    key = chosen.strip().lower()
    if key == "mock":
        return MockFactory(pin_class=MockPWMPin)
    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        if ep.name.lower() == key:
            try:
                factory: Any = ep.load()()
            except Exception as exc:  # import errors, no /dev/gpiochip, no daemon ...
                raise PinFactoryError(
                    f"pin factory {chosen!r} cannot be used here: {exc}"
                ) from exc
            return factory
    raise PinFactoryError(
        f"unknown pin factory {chosen!r} (known: {', '.join(_known_names())})"
    )


def default_pin_factory() -> Factory | None:
    """The process-wide factory drivers use when given ``pin_factory=None``.

    Resolved once from the environment and then shared, so that with ``mock`` every
    driver in the process sees the same mock pins (gpiozero's default is used as is).
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = (make_pin_factory(),)
        return _shared[0]


def resolve_pin_factory(pin_factory: Factory | None) -> Factory | None:
    """The factory a driver should use: the explicit one, else :func:`default_pin_factory`."""
    return pin_factory if pin_factory is not None else default_pin_factory()
