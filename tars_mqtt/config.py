"""Connection and behaviour settings, from keyword arguments or ``MQTT_*`` variables.

The only module that reads the environment. Every rule lives in ``__post_init__`` so a
config built by hand is checked exactly like one read from the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ConfigError
from .settings import parse_bool, parse_float, parse_int
from .strictjson import is_utf8

__all__ = ["MQTTConfig", "QueuePolicy"]

QueuePolicy = Literal["block", "drop_oldest", "drop_newest"]

_SCHEMES: dict[str, tuple[int, str, bool]] = {  # scheme -> (default port, transport, tls)
    "mqtt": (1883, "tcp", False),
    "mqtts": (8883, "tcp", True),
    "ws": (80, "websockets", False),
    "wss": (443, "websockets", True),
}
# field -> (inclusive minimum, inclusive maximum, unit for the message)
_RANGES: dict[str, tuple[float, float, str]] = {
    "keepalive": (1, 3600, " s"),
    "session_expiry": (0, 2**32 - 1, " s"),
    "receive_maximum": (0, 65535, ""),
    "workers": (1, 64, ""),
    "queue_size": (1, 1_000_000, ""),
    "offline_queue": (0, 1_000_000, ""),
    "reconnect_min_delay": (0.0, 3600.0, " s"),
    "reconnect_max_delay": (0.0, 3600.0, " s"),
    "heartbeat_interval": (0.1, 86400.0, " s"),
    "dedupe_ttl": (0.0, 86400.0, " s"),
    "dedupe_max_entries": (1, 10_000_000, ""),
}
# fields whose variable is not simply the field name in capitals
_VARIABLES = {"source": "SOURCE_NAME"}
_OPTIONAL_BOOLS = {"clean_start"}  # None = decided by another setting
_TEXT = ("client_id", "source", "username", "password")  # sent to the broker: UTF-8 only
_NOT_SHOWN = {"username", "password"}


def _fail(name: str, rule: str) -> ConfigError:
    return ConfigError(f"{name}: {rule}", field=name)


@dataclass(frozen=True)
class MQTTConfig:
    """Everything a client needs; frozen so one config can be shared safely between threads.

    Credentials given in ``url`` move into ``username``/``password``; ``url`` keeps no secret.
    ``clean_start`` None means: resume the session when ``session_expiry`` > 0.
    """

    url: str = "mqtt://localhost:1883"
    client_id: str = ""
    source: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive: int = 60
    protocol: str = "5"
    clean_start: bool | None = None
    session_expiry: int = 0
    receive_maximum: int = 0
    workers: int = 4
    queue_size: int = 1000
    queue_policy: QueuePolicy = "block"
    offline_queue: int = 1000
    reconnect_min_delay: float = 0.5
    reconnect_max_delay: float = 5.0
    enable_health: bool = True
    enable_heartbeat: bool = True
    heartbeat_interval: float = 5.0
    dedupe_ttl: float = 0.0
    dedupe_max_entries: int = 10000
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False

    def __post_init__(self) -> None:
        self._take_url_credentials()
        for name in _TEXT:
            value = getattr(self, name)
            if value is not None and not is_utf8(value):
                shown = "" if name in _NOT_SHOWN else f", got {value!r}"
                raise _fail(name, f"must be valid UTF-8 text{shown}")
        if self.clean_start is not None and not isinstance(self.clean_start, bool):
            raise _fail("clean_start", f"must be true, false or unset, got {self.clean_start!r}")
        if not self.client_id:
            raise _fail("client_id", "required (1..128 characters)")
        if len(self.client_id) > 128 or any(c in self.client_id for c in "/+#"):
            raise _fail(
                "client_id", f"must be 1..128 characters without / + #, got {self.client_id!r}"
            )
        if not self.source:
            object.__setattr__(self, "source", self.client_id)
        if self.protocol not in ("5", "3.1.1"):
            raise _fail("protocol", f"must be '5' or '3.1.1', got {self.protocol!r}")
        if self.queue_policy not in ("block", "drop_oldest", "drop_newest"):
            raise _fail(
                "queue_policy",
                f"must be block, drop_oldest or drop_newest, got {self.queue_policy!r}",
            )
        for name, (low, high, unit) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(name, f"must be a number, got {value!r}")
            if not low <= value <= high:
                raise _fail(name, f"must be {low:g}..{high:g}{unit}, got {value!r}")
        if self.reconnect_min_delay > self.reconnect_max_delay:
            raise _fail(
                "reconnect_min_delay",
                f"must be <= reconnect_max_delay ({self.reconnect_max_delay:g}),"
                f" got {self.reconnect_min_delay:g}",
            )
        self._check_tls()

    def _take_url_credentials(self) -> None:
        """Move ``user:password@`` out of ``url``, whatever characters the password holds.

        The credentials end at the last ``@``: a password with an unencoded ``#``, ``/``
        or ``?`` would otherwise be read as the URL's fragment, path or query (and shown
        in errors and ``repr``), or as its host and port. Percent-escapes are decoded.
        """
        if not isinstance(self.url, str) or not is_utf8(self.url):
            raise _fail("url", "must be valid UTF-8 text")
        scheme, sep, rest = self.url.partition("://")
        if not sep or scheme not in _SCHEMES:
            shown = f", got {scheme!r}" if sep else " (scheme://host:port)"
            raise _fail("url", f"scheme must be mqtt, mqtts, ws or wss{shown}")
        userinfo, at, location = rest.rpartition("@")
        url = f"{scheme}://{location}"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _fail("url", f"not a valid URL ({exc})") from None
        if not parts.hostname:
            raise _fail("url", f"needs a host: {scheme}://HOST[:PORT]")
        if port == 0:
            raise _fail("url", "port must be 1..65535")
        if at:
            user, colon, password = userinfo.partition(":")
            if user and self.username is None:
                object.__setattr__(self, "username", unquote(user))
            if colon and self.password is None:
                object.__setattr__(self, "password", unquote(password))
        object.__setattr__(self, "url", self._safe_url(url))

    @staticmethod
    def _safe_url(url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def _check_tls(self) -> None:
        for name in ("tls_ca", "tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise _fail(name, f"file not found: {path}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise _fail("tls_cert", "tls_cert and tls_key go together")
        for name in ("tls_ca", "tls_cert", "tls_key", "tls_insecure"):
            if getattr(self, name) and not self.tls:
                raise _fail(name, f"TLS settings given but {self.url} is not mqtts:// or wss://")

    # Derived settings -----------------------------------------------------------------
    @property
    def starts_clean(self) -> bool:
        """Whether each connect starts a fresh session (else the broker's is resumed)."""
        return self.session_expiry == 0 if self.clean_start is None else self.clean_start

    @property
    def receive_window(self) -> int:
        """How many unacknowledged QoS 1/2 messages the broker may send (MQTT 5).

        ``receive_maximum`` 0 picks it: the queue's size under ``block``, so the broker holds
        back what the queue has no room for; 65535 (no limit) under the drop policies, so
        the queue's policy, not the broker, decides what is dropped.
        """
        if self.receive_maximum:
            return self.receive_maximum
        return min(self.queue_size, 65535) if self.queue_policy == "block" else 65535

    # Derived from the URL -------------------------------------------------------------
    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or _SCHEMES[parts.scheme][0]

    @property
    def transport(self) -> Literal["tcp", "websockets"]:
        return "websockets" if _SCHEMES[urlsplit(self.url).scheme][1] == "websockets" else "tcp"

    @property
    def tls(self) -> bool:
        return _SCHEMES[urlsplit(self.url).scheme][2]

    @property
    def ws_path(self) -> str:
        return urlsplit(self.url).path or "/mqtt"

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "password" and value is not None:
                shown.append("password='***'")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"MQTTConfig({', '.join(shown)})"

    __str__ = __repr__

    def replace(self, **changes: Any) -> MQTTConfig:
        """A copy with some fields changed, checked like a new config."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        prefix: str = "MQTT_",
        environ: Mapping[str, str] | None = None,
        *,
        client_id: str | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> MQTTConfig:
        """Read ``{prefix}URL``, ``{prefix}CLIENT_ID``... over the caller's own defaults.

        ``client_id`` and ``defaults`` (field name -> value) are what a service picks for
        itself, e.g. ``defaults={"session_expiry": 3600}``; a variable that is set wins.

        Raises:
            ConfigError: naming the variable and the rule it broke.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = dict(defaults or {})
        from_env: set[str] = set()
        for f in dataclasses.fields(cls):
            var = prefix + _VARIABLES.get(f.name, f.name.upper())
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            kind = False if f.name in _OPTIONAL_BOOLS else f.default
            values[f.name] = _convert(var, raw.strip(), kind)
            from_env.add(f.name)
        password_file = env.get(prefix + "PASSWORD_FILE")
        if password_file and "password" not in from_env:
            values["password"] = _read_secret(prefix + "PASSWORD_FILE", password_file)
        if "client_id" not in values and client_id:
            values["client_id"] = client_id
        if "protocol" in values:
            values["protocol"] = {"5.0": "5", "311": "3.1.1", "v5": "5"}.get(
                values["protocol"], values["protocol"]
            )
        try:
            return cls(**values)
        except ConfigError as exc:
            if exc.field is None:
                raise
            var = prefix + _VARIABLES.get(exc.field, exc.field.upper())
            raise ConfigError(f"{var}{str(exc)[len(exc.field):]}", field=exc.field) from None


def _convert(var: str, raw: str, default: Any) -> Any:
    """One variable's text as its field's type, by :mod:`tars_mqtt.settings`' rules."""
    if isinstance(default, bool):
        return parse_bool(var, raw)
    if isinstance(default, int):
        return parse_int(var, raw)
    if isinstance(default, float):
        return parse_float(var, raw)
    return raw


def _read_secret(var: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{var}: cannot read {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{var}: {path!r} is not UTF-8 text") from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(f"{var}: cannot read {path!r}: {exc}") from None

