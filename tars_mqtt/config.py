"""Connection and behaviour settings, from keyword arguments or ``MQTT_*`` variables.

The only module that reads the environment. Every rule lives in ``__post_init__`` so a
config built by hand is checked exactly like one read from the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigError
from .settings import FALSE, TRUE, parse_bool, parse_float, parse_int
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
# Several brokers in one MQTT_URL: commas or spaces before a scheme (a password's comma stays).
_URL_LIST = re.compile(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_TLS_FIELDS = ("tls_ca", "tls_cert", "tls_key", "tls_insecure")  # also ?tls_ca=... in a URL
_NO_TLS: dict[str, Any] = {"tls_ca": None, "tls_cert": None, "tls_key": None,
                           "tls_insecure": False}
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
    ``url`` may list several brokers (comma or space separated): see :attr:`brokers`.
    ``clean_start`` None means: resume the session when ``session_expiry`` > 0.
    """

    _brokers: ClassVar[tuple[MQTTConfig, ...]] = ()  # one config per URL, when several
    _given: ClassVar[tuple[str, str | None, str | None]]  # url, username, password as given

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
        object.__setattr__(self, "_given", (self.url, self.username, self.password))
        urls = _URL_LIST.split(self.url.strip()) if isinstance(self.url, str) else [self.url]
        if len(urls) > 1:
            object.__setattr__(self, "_brokers", tuple(self._broker(url) for url in urls))
            object.__setattr__(self, "url", urls[0])  # the checks below are the first URL's
        self._take_url_credentials()
        self._take_url_tls()
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
        if self._brokers:
            self._check_tls_in_list()
        else:
            self._check_tls()

    def _broker(self, url: str) -> MQTTConfig:
        """The config for one URL of a list, checked; shared TLS settings go to TLS URLs only."""
        tls = _SCHEMES.get(url.partition("://")[0], (0, "", False))[2]
        return dataclasses.replace(self, url=url, **({} if tls else _NO_TLS))

    def _take_url_tls(self) -> None:
        """``?tls_ca=PATH&tls_cert=...&tls_key=...&tls_insecure=true`` in a URL: that broker's
        own TLS files, used where the ``tls_*`` field is unset."""
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {key: value for key, value in query if key in _TLS_FIELDS}
        if not own:
            return
        if not self.tls:
            raise _fail("url", f"{', '.join(own)} given in {urlunsplit(parts._replace(query=''))},"
                               " which is not mqtts:// or wss://")
        for key, value in own.items():
            if key == "tls_insecure" and value.lower() not in TRUE | FALSE:
                raise _fail("url", f"tls_insecure must be true or false, got {value!r}")
            if getattr(self, key) in (None, False):  # a variable that is set wins
                object.__setattr__(self, key, value.lower() in TRUE if key == "tls_insecure"
                                   else value)
        rest = urlencode([(key, value) for key, value in query if key not in _TLS_FIELDS])
        object.__setattr__(self, "url", urlunsplit(parts._replace(query=rest)))

    def _check_tls_in_list(self) -> None:
        """Each URL was checked on its own; shared TLS settings need one TLS URL to serve."""
        object.__setattr__(self, "url", ",".join(b.url for b in self._brokers))
        for name in _TLS_FIELDS:
            if getattr(self, name) and not any(b.tls for b in self._brokers):
                raise _fail(name, f"TLS settings given but no URL of {self.url} is"
                                  " mqtts:// or wss://")

    @property
    def brokers(self) -> tuple[MQTTConfig, ...]:
        """One config per broker of ``url``, in order (just this one for a single URL).

        Each has that broker's host, port, transport and TLS, and its own credentials
        when its URL had them; everything else is this config's.
        """
        return self._brokers or (self,)

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
    # (of the first broker, when ``url`` lists several)
    @property
    def host(self) -> str:
        return urlsplit(self.brokers[0].url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.brokers[0].url)
        return parts.port or _SCHEMES[parts.scheme][0]

    @property
    def transport(self) -> Literal["tcp", "websockets"]:
        scheme = urlsplit(self.brokers[0].url).scheme
        return "websockets" if _SCHEMES[scheme][1] == "websockets" else "tcp"

    @property
    def tls(self) -> bool:
        return _SCHEMES[urlsplit(self.brokers[0].url).scheme][2]

    @property
    def ws_path(self) -> str:
        return urlsplit(self.brokers[0].url).path or "/mqtt"

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
        url, username, password = self._given  # each URL's own credentials stay its own
        given = {"url": url, "username": username, "password": password}
        return dataclasses.replace(self, **{**given, **changes})

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

