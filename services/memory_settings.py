"""tars-memory's settings, from the environment; and where its persona lives.

The state directory holds ``memory.db`` (the conversation) and, once a trait was changed,
``persona.toml`` (the persona as changed). It is ``TARS_MEMORY_DIR``, else systemd's
``$STATE_DIRECTORY`` (``StateDirectory=`` in the unit), else ``$XDG_STATE_HOME/tars-memory``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tars_mqtt import ConfigError

from .common import env_float, env_int
from .persona import Persona, PersonaError, load

__all__ = ["MemorySettings", "load_persona"]

log = logging.getLogger("tars.memory")
DAY = 86400.0


@dataclass(frozen=True)
class MemorySettings:
    directory: Path
    max_age: float = 30 * DAY  # seconds a turn is kept
    max_turns: int = 10_000
    base_persona: Path | None = None  # None: the one shipped with the services

    @property
    def database(self) -> Path:
        return self.directory / "memory.db"

    @property
    def persona_file(self) -> Path:
        return self.directory / "persona.toml"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> MemorySettings:
        """Raises ConfigError naming the variable (the directory must be writable)."""
        name, raw = "TARS_MEMORY_DIR", environ.get("TARS_MEMORY_DIR", "").strip()
        if not raw and environ.get("STATE_DIRECTORY", "").strip():
            name, raw = "STATE_DIRECTORY", environ["STATE_DIRECTORY"].split(":")[0].strip()
        if not raw:
            state = environ.get("XDG_STATE_HOME", "").strip() or \
                os.path.join(os.path.expanduser("~"), ".local", "state")
            raw = os.path.join(state, "tars-memory")
        directory = Path(raw)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{name}={raw!r} cannot be made: {exc.strerror}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"{name}={raw!r} is not a directory this service may write")
        persona = environ.get("TARS_PERSONA", "").strip()
        days = env_float(environ, "TARS_MEMORY_MAX_AGE_DAYS", 30.0, low=0.0001, high=36500)
        return cls(directory, days * DAY,
                   env_int(environ, "TARS_MEMORY_MAX_TURNS", 10_000, low=1, high=10_000_000),
                   Path(persona) if persona else None)


def load_persona(settings: MemorySettings) -> Persona:
    """The changed persona in the state directory, else the base one.

    A changed persona file that no longer reads is moved aside (and said so), never fatal.

    Raises:
        ConfigError: the base persona (``TARS_PERSONA``) does not read.
    """
    changed = settings.persona_file
    if changed.exists():
        try:
            return load(changed)
        except PersonaError as exc:
            aside = changed.with_name(f"persona.toml.broken-{time.strftime('%Y%m%dT%H%M%S')}")
            changed.replace(aside)
            log.error("%s; moved aside to %s, using the base persona", exc, aside)
    try:
        return load(settings.base_persona)
    except PersonaError as exc:
        raise ConfigError(f"TARS_PERSONA: {exc}") from None
