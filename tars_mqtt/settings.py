"""Settings from environment variables: the one parser for ``MQTT_*`` and ``TARS_*`` values.

Each function reads one variable, returns the default when it is unset or blank, and
otherwise raises :class:`~tars_mqtt.ConfigError` naming the variable and the rule it
broke, so a service with a bad setting fails at start-up and says which one. A value
that is not valid UTF-8 (the environment can carry any bytes) is such an error too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .errors import ConfigError
from .strictjson import is_utf8

__all__ = ["TRUE", "FALSE", "env_bool", "env_float", "env_int", "env_text", "parse_bool",
           "parse_float", "parse_int"]

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def env_text(environ: Mapping[str, str], name: str) -> str | None:
    """``$name`` stripped, or None when unset or blank.

    Raises:
        ConfigError: the value is not valid UTF-8.
    """
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    if not is_utf8(value):
        raise ConfigError(f"{name}: is not valid UTF-8")
    return value.strip()


def parse_bool(name: str, raw: str) -> bool:
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ConfigError(f"{name}: must be one of 1/0, true/false, yes/no, on/off, got {raw!r}")


def parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a whole number, got {raw!r}") from None


def parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}: must be a finite number, got {raw!r}")
    return value


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """``$name`` as a boolean (1/0, true/false, yes/no, on/off)."""
    raw = env_text(environ, name)
    return default if raw is None else parse_bool(name, raw)


def env_int(environ: Mapping[str, str], name: str, default: int, *,
            low: int = 0, high: int = 1_000_000) -> int:
    """``$name`` as a whole number in ``low..high``."""
    raw = env_text(environ, name)
    if raw is None:
        return default
    value = parse_int(name, raw)
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be from {low} to {high}, got {raw!r}")
    return value


def env_float(environ: Mapping[str, str], name: str, default: float, *,
              low: float = 0.0, high: float = 1e6) -> float:
    """``$name`` as a number in ``low..high``."""
    raw = env_text(environ, name)
    if raw is None:
        return default
    value = parse_float(name, raw)
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be from {low:g} to {high:g}, got {raw!r}")
    return value
