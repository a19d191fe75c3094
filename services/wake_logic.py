"""tars-wake's pure parts: its settings, and what a button press or a state becomes.

:mod:`services.wake` wires them to the button, the LED and the client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hw import PATTERNS
from tars_mqtt import ConfigError

from .common import env_bool, env_float, env_int
from .text import shown

__all__ = ["WakeSettings", "handle_button", "handle_state"]


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
        return None, f"system/state data has no string 'state': {shown(data)}"
    if state not in PATTERNS or state == "error":
        return "error", f"unknown state {shown(state)}"
    return state, None
