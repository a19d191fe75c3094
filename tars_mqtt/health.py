"""Health and heartbeat payloads (pure), so their shape is tested without a broker."""

from __future__ import annotations

from typing import Any

from .stats import ClientStats

__all__ = ["HEALTH_EVENTS", "HEALTH_TYPE", "HEARTBEAT_TYPE", "health_data", "heartbeat_data"]

HEALTH_TYPE = "system.health"
HEARTBEAT_TYPE = "system.heartbeat"
HEALTH_EVENTS = ("ready", "reconnected", "shutdown", "error", "offline")


def health_data(ok: bool, event: str, error: str | None = None) -> dict[str, Any]:
    """``{ok, event, error?}`` for ``system/health/{client_id}``."""
    if event not in HEALTH_EVENTS:
        raise ValueError(f"health event must be one of {', '.join(HEALTH_EVENTS)}, got {event!r}")
    data: dict[str, Any] = {"ok": bool(ok), "event": event}
    if error:
        data["error"] = str(error)
    return data


def heartbeat_data(uptime: float, stats: ClientStats) -> dict[str, Any]:
    """``{ok, event: heartbeat, uptime, stats}`` for ``system/keepalive/{client_id}``."""
    return {"ok": True, "event": "heartbeat", "uptime": round(uptime, 3), "stats": stats.to_dict()}
