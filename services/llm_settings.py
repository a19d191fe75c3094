"""tars-llm's settings, from the environment only; a bad one names its variable.

With ``TARS_LLM_URL`` unset the service answers with the offline responder
(:mod:`services.skills`); with it set, every question goes to that OpenAI-compatible
endpoint. The API key is read from ``TARS_LLM_API_KEY_FILE`` (never from the environment
itself, which ``systemctl show`` and ``/proc`` reveal) and kept in a :class:`Secret`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tars_mqtt import ConfigError
from tars_mqtt.timing import Backoff

from .common import env_float, env_int
from .llm_http import Endpoint, Secret
from .persona import Persona, PersonaError, load

__all__ = ["LLMSettings", "endpoint_from_env"]


@dataclass(frozen=True)
class LLMSettings:
    """What the service runs with (``endpoint`` None: the offline responder)."""

    endpoint: Endpoint | None
    persona: Persona = field(default_factory=load)
    answer_timeout: float = 60.0  # the whole answer
    memory_timeout: float = 0.5  # how long a question waits for memory/results
    memory_k: int = 3
    max_streams: int = 2
    max_chars: int = 4000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LLMSettings:
        """Raises ConfigError naming the variable that is wrong."""
        persona_path = environ.get("TARS_PERSONA", "").strip()
        try:
            persona = load(Path(persona_path) if persona_path else None)
        except PersonaError as exc:
            raise ConfigError(f"TARS_PERSONA: {exc}") from None
        return cls(
            endpoint_from_env(environ), persona,
            env_float(environ, "TARS_LLM_TIMEOUT", 60.0, low=0.1, high=3600),
            env_float(environ, "TARS_LLM_MEMORY_TIMEOUT", 0.5, low=0.0, high=30),
            env_int(environ, "TARS_LLM_MEMORY_K", 3, low=0, high=20),
            env_int(environ, "TARS_LLM_MAX_STREAMS", 2, low=1, high=32),
            env_int(environ, "TARS_LLM_MAX_CHARS", 4000, low=10, high=100_000))


def endpoint_from_env(environ: Mapping[str, str] = os.environ) -> Endpoint | None:
    """The endpoint of ``TARS_LLM_URL`` (a base such as ``http://host:8080/v1``, or the
    full ``.../chat/completions`` address), or None when it is unset."""
    raw = environ.get("TARS_LLM_URL", "").strip()
    if not raw:
        return None
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        raise ConfigError("TARS_LLM_URL is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("TARS_LLM_URL must be an http:// or https:// address with a host")
    if url.userinfo:
        raise ConfigError("TARS_LLM_URL must not hold a user or password: put the API key"
                          " in the file named by TARS_LLM_API_KEY_FILE")
    if not url.path.rstrip("/").endswith("/chat/completions"):
        url = url.copy_with(path=url.path.rstrip("/") + "/chat/completions")
    model = environ.get("TARS_LLM_MODEL", "").strip()
    if not model:
        raise ConfigError("TARS_LLM_MODEL must name the model when TARS_LLM_URL is set")
    temperature = environ.get("TARS_LLM_TEMPERATURE", "").strip()
    connect = env_float(environ, "TARS_LLM_CONNECT_TIMEOUT", 5.0, low=0.05, high=300)
    retry_max = env_float(environ, "TARS_LLM_RETRY_MAX_DELAY", 8.0, low=0.01, high=300)
    return Endpoint(
        str(url), model, _key(environ), connect,
        env_float(environ, "TARS_LLM_READ_TIMEOUT", 20.0, low=0.05, high=600),
        env_int(environ, "TARS_LLM_MAX_TOKENS", 256, low=1, high=100_000),
        env_float(environ, "TARS_LLM_TEMPERATURE", 0.0, high=2.0) if temperature else None,
        env_int(environ, "TARS_LLM_RETRIES", 2, low=0, high=10),
        Backoff(min_delay=min(0.5, retry_max), max_delay=retry_max))


def _key(environ: Mapping[str, str]) -> Secret | None:
    name = environ.get("TARS_LLM_API_KEY_FILE", "").strip()
    if not name:
        return None
    try:
        key = Path(name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"TARS_LLM_API_KEY_FILE={name!r} cannot be read: {reason}") from None
    if not key or any(c.isspace() or not c.isprintable() for c in key):
        raise ConfigError(f"TARS_LLM_API_KEY_FILE={name!r} must hold one key on one line")
    return Secret(key)
