"""What every service shares: logging, settings from the environment, the process lifecycle.

Each service is ``main()`` = settings from the environment, a client, the hardware, then
:func:`serve` until SIGTERM/SIGINT. Topic names, QoS and retain flags come from
:mod:`services.topics`, so :func:`publish` takes a row of that table.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from tars_mqtt import ConfigError, Message, MQTTClient, MQTTError, PublishHandle

from .sdnotify import Notifier
from .sdnotify import serve as sd_serve
from .text import shown
from .topics import TopicSpec, check_payload

__all__ = [
    "UNSENDABLE", "Tally", "env_bool", "env_float", "env_int", "problems", "publish", "reply",
    "serve", "setup_logging",
]

log = logging.getLogger("tars")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def setup_logging(environ: Mapping[str, str] = os.environ) -> None:
    """Log to stderr (journald adds the time) at ``$TARS_LOG_LEVEL`` (default INFO)."""
    level = environ.get("TARS_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value is not None and value.strip() else None


def env_float(environ: Mapping[str, str], name: str, default: float, *,
              low: float = 0.0, high: float = 1e6) -> float:
    """``$name`` as a number in ``low..high``; :class:`ConfigError` naming it otherwise."""
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range {low:g}..{high:g}")
    return value


def env_int(environ: Mapping[str, str], name: str, default: int, *,
            low: int = 0, high: int = 1_000_000) -> int:
    """``$name`` as an integer in ``low..high``."""
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range {low}..{high}")
    return value


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """``$name`` as a boolean (1/0, true/false, yes/no, on/off)."""
    raw = _raw(environ, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (1/0, true/false, yes/no, on/off)")


def problems(msg: Message, spec: TopicSpec) -> list[str]:
    """Why ``msg`` does not fit its row of the topic table (empty when it does)."""
    if msg.envelope is None:
        return [f"{msg.topic}: not an envelope ({msg.decode_error})"]
    return check_payload(spec, msg.data)


# What publishing can raise: the client refuses (stopped, offline queue full), or the
# message cannot be encoded (a topic or correlation id taken from a hostile message).
UNSENDABLE = (MQTTError, ValueError, TypeError)


def publish(client: MQTTClient, spec: TopicSpec, data: dict[str, Any],
            correlate: str | None = None, *, tally: Tally | None = None
            ) -> PublishHandle | None:
    """Publish ``data`` on ``spec``'s topic with its event type, QoS and retain flag.

    Never raises: a message that cannot be sent (a stopping client, an unencodable
    ``correlate``) is logged and counted as ``unsent`` in ``tally``, and None returned.
    """
    try:
        return client.publish_event(spec.name, spec.event_type, data, qos=spec.qos,
                                    retain=spec.retain, correlate=correlate)
    except UNSENDABLE as exc:
        _unsent(tally, spec.name, exc)
        return None


def reply(client: MQTTClient, request: Message, event_type: str, data: dict[str, Any], *,
          tally: Tally | None = None) -> PublishHandle | None:
    """Answer ``request`` on its ``reply_to``; like :func:`publish`, logged and counted, never
    raised when that topic is no topic (a wildcard, unencodable) or the client refuses."""
    try:
        return client.reply(request, event_type, data)
    except UNSENDABLE as exc:
        _unsent(tally, f"reply topic {shown(request.reply_to)}", exc)
        return None


def _unsent(tally: Tally | None, where: str, exc: Exception) -> None:
    n = tally.add("unsent") if tally is not None else 0
    log.warning("not sent to %s (#%d): %s", where, n, shown(str(exc), 200))


class Tally:
    """Thread-safe counts of what a service saw (``malformed``, ``rejected`` ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str) -> int:
        with self._lock:
            self._counts[name] += 1
            return self._counts[name]

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class _Notifier(Notifier):
    """systemd notifications, running ``on_stopping`` first when stopping begins."""

    def __init__(self, on_stopping: Callable[[], None] | None) -> None:
        super().__init__()
        self._on_stopping = on_stopping

    def stopping(self) -> None:
        if self._on_stopping is not None:
            self._on_stopping()
        super().stopping()


def serve(client: MQTTClient, *, on_stopping: Callable[[], None] | None = None) -> int:
    """Run ``client`` until SIGTERM/SIGINT, then stop it cleanly; the process's exit code.

    :func:`services.sdnotify.serve` does it (systemd READY/WATCHDOG/STOPPING).
    ``on_stopping`` runs once stopping has begun, while the client still publishes (e.g.
    to end a motion and report it).
    """
    try:
        return sd_serve(client, notifier=_Notifier(on_stopping))
    except MQTTError as exc:
        log.error("%s: %s", client.config.client_id, exc)
        client.stop()
        return 1
