"""Where a client is in its life: one value that both the sync client and its twin read."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ClientState"]


class ClientState(StrEnum):
    """``new`` → ``starting`` → ``running`` → ``stopped``; a failed start goes back to ``new``.

    A ``StrEnum``: each member equals its name as text, as logs and older code spell it.
    """

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
