"""systemd's notify protocol: ``READY=1``, ``STOPPING=1``, ``WATCHDOG=1`` and ``STATUS=``.

:class:`Notifier` speaks sd_notify(3): one Unix datagram of ``KEY=value`` lines to the
socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace).
Without the variable it does nothing, so a service runs the same from a shell. When
to say what is :mod:`services.runtime`'s business.

The protocol is one ``sendto``; the PyPI ``sdnotify`` package (0.3.2, 2017, untyped)
adds nothing we need and ``systemd-python`` needs a C build, so it lives here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from socket import AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, socket

__all__ = ["Notifier"]

log = logging.getLogger("tars.services")


class Notifier:
    """Send sd_notify messages to ``$NOTIFY_SOCKET``; a no-op when it is unset.

    Attributes:
        enabled: a notify socket was given.
        watchdog_interval: half of ``$WATCHDOG_USEC`` in seconds (systemd's advice), or None
            when the service has no watchdog or ``$WATCHDOG_PID`` names another process.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "").strip()
        self.enabled = bool(address)
        self._shown = address
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = _watchdog_interval(env)
        self._failing = False

    def send(self, **fields: str) -> None:
        """Send one datagram, e.g. ``send(READY="1", STATUS="connected")``.

        A failed send is logged (once until one succeeds again), never raised: a service
        must not die because its supervisor went away.
        """
        if not self.enabled or not fields:
            return
        lines = (f"{key}={' '.join(str(value).splitlines())}" for key, value in fields.items())
        payload = "\n".join(lines).encode("utf-8")
        try:  # non-blocking: a supervisor slow to read (a full queue) costs a ping, not a
            # frozen service (an asyncio service's pings run on its event loop)
            with socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK) as sock:
                sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._failing:
                log.warning("sd_notify to %s failed: %s", self._shown, exc)
            self._failing = True
        else:
            self._failing = False

    def ready(self, status: str = "") -> None:
        """``READY=1`` (and ``STATUS=`` when given): start-up is complete."""
        if status:
            self.send(READY="1", STATUS=status)
        else:
            self.send(READY="1")

    def stopping(self) -> None:
        """``STOPPING=1``: the service is shutting down."""
        self.send(STOPPING="1")

    def watchdog(self) -> None:
        """``WATCHDOG=1``: still alive and making progress."""
        self.send(WATCHDOG="1")


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "").strip()
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "").strip()
    if pid and pid != str(os.getpid()):
        return None  # the watchdog belongs to another process (sd_watchdog_enabled(3))
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a whole number: no watchdog pings", usec)
        return None
    return value / 2e6 if value > 0 else None
