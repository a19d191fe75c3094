"""tars-ui's settings from the environment, checked at start-up (``ConfigError`` names it).

The page binds to 127.0.0.1 unless told otherwise; any other address lets other machines
reach the robot's controls, so it needs a token from ``TARS_UI_TOKEN_FILE``. The token is
never logged, shown in a repr or put in an error.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tars_mqtt import ConfigError
from tars_mqtt.settings import env_float, env_int, env_text

__all__ = ["MIN_TOKEN_LENGTH", "UISettings", "is_loopback"]

MIN_TOKEN_LENGTH = 16


def is_loopback(bind: str) -> bool:
    """Whether ``bind`` only listens on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False  # a host name or "": it may resolve to anything


@dataclass(frozen=True)
class UISettings:
    """``TARS_UI_BIND`` (127.0.0.1), ``TARS_UI_PORT`` (8770), ``TARS_UI_TOKEN_FILE``,
    ``TARS_UI_TLS_CERT`` / ``TARS_UI_TLS_KEY``, ``TARS_UI_QUEUE`` (frames waiting per
    browser, 256), ``TARS_UI_MAX_CLIENTS`` (16), ``TARS_UI_STALE_AFTER`` (15 s)."""

    bind: str = "127.0.0.1"
    port: int = 8770
    token: str | None = field(default=None, repr=False)
    tls_cert: str | None = None
    tls_key: str | None = None
    queue: int = 256
    max_clients: int = 16
    stale_after: float = 15.0

    @property
    def url(self) -> str:
        """Where a browser on this machine finds the page."""
        host = "127.0.0.1" if not is_loopback(self.bind) else self.bind
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> UISettings:
        bind = env_text(environ, "TARS_UI_BIND") or "127.0.0.1"
        token = _token(env_text(environ, "TARS_UI_TOKEN_FILE"))
        if token is None and not is_loopback(bind):
            raise ConfigError(f"TARS_UI_BIND={bind!r} lets other machines reach the controls:"
                              " set TARS_UI_TOKEN_FILE to a file holding a token, or bind to"
                              " 127.0.0.1 and use an SSH tunnel")
        cert = env_text(environ, "TARS_UI_TLS_CERT")
        key = env_text(environ, "TARS_UI_TLS_KEY")
        if (cert is None) != (key is None):
            raise ConfigError("TARS_UI_TLS_CERT and TARS_UI_TLS_KEY go together")
        for name, path in (("TARS_UI_TLS_CERT", cert), ("TARS_UI_TLS_KEY", key)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name}={path!r} is not a file")
        return cls(bind=bind, port=env_int(environ, "TARS_UI_PORT", 8770, low=1, high=65535),
                   token=token, tls_cert=cert, tls_key=key,
                   queue=env_int(environ, "TARS_UI_QUEUE", 256, low=8, high=100_000),
                   max_clients=env_int(environ, "TARS_UI_MAX_CLIENTS", 16, low=1, high=1000),
                   stale_after=env_float(environ, "TARS_UI_STALE_AFTER", 15.0, low=0.5,
                                         high=3600))


def _token(path: str | None) -> str | None:
    """The token in ``path`` (stripped); errors name the variable and the file, never its text."""
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"TARS_UI_TOKEN_FILE={path!r} cannot be read: {reason}") from None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"TARS_UI_TOKEN_FILE={path!r} holds a token shorter than"
                          f" {MIN_TOKEN_LENGTH} characters; make one with"
                          " `openssl rand -hex 16`")
    if any(c.isspace() for c in token):
        raise ConfigError(f"TARS_UI_TOKEN_FILE={path!r}: the token must be one word")
    return token
