"""tars-router's settings, from the environment (``TARS_ROUTER_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .common import env_bool, env_float, env_int

__all__ = ["RouterSettings"]


@dataclass(frozen=True)
class RouterSettings:
    """Seconds: ``TARS_ROUTER_LLM_TIMEOUT`` (8, to the first words), ``_LISTEN_TIMEOUT`` (10),
    ``_THINK_TIMEOUT`` (LLM timeout + 5), ``_SPEAK_TIMEOUT`` (30), ``_ANSWER_TIMEOUT`` (60,
    the whole answer), ``_SESSION_GAP`` (300: a pause that ends a session and its history);
    ``TARS_ROUTER_HISTORY`` (6 messages); ``TARS_ROUTER_STREAM`` (on: speak as it streams)."""

    llm_timeout: float = 8.0
    listening: float = 10.0
    thinking: float = 13.0
    speaking: float = 30.0
    answer_timeout: float = 60.0
    session_gap: float = 300.0
    history: int = 6
    stream: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RouterSettings:
        llm = env_float(environ, "TARS_ROUTER_LLM_TIMEOUT", 8.0, low=0.1, high=600)
        return cls(llm, env_float(environ, "TARS_ROUTER_LISTEN_TIMEOUT", 10.0, low=0.1),
                   env_float(environ, "TARS_ROUTER_THINK_TIMEOUT", llm + 5, low=llm),
                   env_float(environ, "TARS_ROUTER_SPEAK_TIMEOUT", 30.0, low=0.1),
                   env_float(environ, "TARS_ROUTER_ANSWER_TIMEOUT", max(60.0, llm), low=llm),
                   env_float(environ, "TARS_ROUTER_SESSION_GAP", 300.0, low=1.0),
                   env_int(environ, "TARS_ROUTER_HISTORY", 6, low=0, high=40),
                   env_bool(environ, "TARS_ROUTER_STREAM", True))
