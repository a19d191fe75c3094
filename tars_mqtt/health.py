"""Health and heartbeat: their payloads, and the rules that judge a client by them (pure).

Retained ``system/health/{id}`` says ok or not (and why); ``system/keepalive/{id}`` is not
retained, so a heartbeat's freshness can only be seen by listening. A client whose health
says ok is *stale* when no heartbeat arrived within ``stale_after`` seconds of listening,
or its last one is older than that. A client whose last health is ``shutdown`` stopped
cleanly, on purpose: ``rows()`` marks it not judged unless named or asked for, so a stopped
service or a short script that came and went does not fail every later check.
:class:`HealthBook` holds the facts and judges them with the times passed in; ``tars-mqtt
health`` and the web view both read it.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

from .envelope import Message
from .stats import ClientStats

__all__ = [
    "HEALTH_EVENTS", "HEALTH_TYPE", "HEARTBEAT_TYPE", "HealthBook", "Row", "age", "health_data",
    "heartbeat_data",
]

HEALTH_TYPE = "system.health"
HEARTBEAT_TYPE = "system.heartbeat"
HEALTH_EVENTS = ("ready", "reconnected", "shutdown", "error", "offline")


def health_data(ok: bool, event: str, error: str | None = None,
                broker: str | None = None) -> dict[str, Any]:
    """``{ok, event, error?, broker?}`` for ``system/health/{client_id}``."""
    if event not in HEALTH_EVENTS:
        raise ValueError(f"health event must be one of {', '.join(HEALTH_EVENTS)}, got {event!r}")
    data: dict[str, Any] = {"ok": bool(ok), "event": event}
    if error:
        data["error"] = str(error)
    if broker:
        data["broker"] = broker
    return data


def heartbeat_data(uptime: float, stats: ClientStats) -> dict[str, Any]:
    """``{ok, event: heartbeat, uptime, stats}`` for ``system/keepalive/{client_id}``."""
    return {"ok": True, "event": "heartbeat", "uptime": round(uptime, 3), "stats": stats.to_dict()}


@dataclass
class _Entry:
    ok: bool | None = None          # None: no health record seen (heartbeats only)
    event: str = "-"
    error: str | None = None
    health_ts: float | None = None  # the sender's wall clock (envelope ts)
    beat_at: float | None = None    # our monotonic clock, when the last heartbeat arrived


@dataclass(frozen=True)
class Row:
    """One client's line in the table; ``healthy`` is what the exit code is made of."""

    client: str
    ok: bool | None
    event: str
    health_age: float | None
    beat_age: float | None
    status: str
    healthy: bool
    waiting: bool = False  # ok so far, but no heartbeat yet and still listening
    judged: bool = True    # False: it shut down cleanly, and nobody asked about it
    stale: bool = False    # says ok, but its heartbeat is missing or too old

    def to_json(self) -> dict[str, Any]:
        """The row for ``--json``: ages in seconds (None when unknown)."""
        return {"client": self.client, "ok": self.ok, "event": self.event,
                "health_age": _rounded(self.health_age), "heartbeat_age":
                _rounded(self.beat_age), "status": self.status, "healthy": self.healthy,
                "judged": self.judged}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


class HealthBook:
    """Health and heartbeat facts per client id; safe to feed from a handler thread."""

    def __init__(self, stale_after: float, since: float) -> None:
        self.stale_after = stale_after
        self.since = since  # monotonic time the subscriptions were made
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def add(self, msg: Message, received: float) -> None:
        """Record one message from ``system/health/#`` or ``system/keepalive/#``."""
        kind, _, client = msg.topic.partition("/")[2].partition("/")
        if not client:
            return
        with self._lock:
            entry = self._entries.setdefault(client, _Entry())
            if kind == "keepalive":
                entry.beat_at = received
            elif kind == "health":
                _read_health(entry, msg)
        self.changed.set()

    def rows(self, now: float, wall_now: float, only: list[str] | None = None, *,
             stopped: bool = False) -> list[Row]:
        """Every client (or just ``only``; missing ones are unhealthy), sorted by id.

        Clients that shut down cleanly come with ``judged=False`` unless named in ``only``
        or ``stopped`` is true.
        """
        with self._lock:
            entries = dict(self._entries)
        names = sorted(entries) if not only else list(dict.fromkeys(only))
        rows = [self._judge(name, entries.get(name), now, wall_now) for name in names]
        if only or stopped:
            return rows
        return [dataclasses.replace(r, judged=False) if _shut_down(entries[r.client]) else r
                for r in rows]

    def _judge(self, client: str, entry: _Entry | None, now: float, wall_now: float) -> Row:
        if entry is None:
            return Row(client, None, "-", None, None, "missing: no health, no heartbeat", False)
        health_age = None if entry.health_ts is None else max(0.0, wall_now - entry.health_ts)
        beat_age = None if entry.beat_at is None else now - entry.beat_at
        healthy, waiting, stale = False, False, False
        if entry.ok is False:
            status = f"not ok: {entry.event}" + (f" ({entry.error})" if entry.error else "")
        elif beat_age is not None and beat_age > self.stale_after:
            status, stale = f"stale: last heartbeat {age(beat_age)} ago", True
        elif beat_age is not None:
            status, healthy = "ok", True
        elif now - self.since >= self.stale_after:
            status, stale = f"stale: no heartbeat in {age(self.stale_after)}", True
        else:
            status, waiting = "waiting for a heartbeat", True
        return Row(client, entry.ok, entry.event, health_age, beat_age, status, healthy, waiting,
                   stale=stale)


def _shut_down(entry: _Entry) -> bool:
    return entry.ok is False and entry.event == "shutdown"


def _read_health(entry: _Entry, msg: Message) -> None:
    env = msg.envelope
    data: Any = env.data if env is not None else None
    if env is None or env.type != HEALTH_TYPE or not isinstance(data, dict):
        entry.ok, entry.event = False, "?"
        entry.error = f"not a health envelope ({msg.decode_error or env and env.type})"
        entry.health_ts = env.ts if env is not None else None
        return
    entry.ok = data.get("ok") is True
    entry.event = str(data.get("event", "?"))
    error = data.get("error")
    entry.error = str(error) if error else None
    entry.health_ts = env.ts


def age(seconds: float | None) -> str:
    """``850ms``, ``4.2s``, ``12m05s``, ``3h07m``, ``2d04h``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
