"""systemd's notify protocol for the TARS services: ready, stopping, and an honest watchdog.

:class:`Notifier` speaks sd_notify(3): one Unix datagram of ``KEY=value`` lines to the
socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace).
Without the variable it does nothing, so a service runs the same from a shell.

:func:`serve` is what every service's ``main()`` ends with. It starts the client, says
``READY=1`` after the first connection, pings ``WATCHDOG=1`` every half ``WATCHDOG_USEC``
only while :meth:`MQTTClient.liveness_problem` finds nothing wrong (a broker that is
merely down is fine; a dead thread, refused credentials or a handler stuck longer than the
handler limit is not), and on SIGTERM/SIGINT says ``STOPPING=1`` and stops the client.
When the pings stop, systemd kills the service after ``WatchdogSec=`` and restarts it.

The sd_notify protocol is one ``sendto``; the PyPI ``sdnotify`` package (0.3.2, 2017,
untyped) adds nothing we need and ``systemd-python`` needs a C build, so it lives here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from socket import AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, socket

from tars_mqtt import ConfigError, ConnectError, MQTTClient, MQTTError, SubscribeError
from tars_mqtt.signals import stop_on_signals

__all__ = [
    "DEFAULT_HANDLER_LIMIT",
    "ENV_HANDLER_LIMIT",
    "EXIT_CONFIG",
    "Notifier",
    "handler_limit_from_env",
    "serve",
]

log = logging.getLogger("tars.services")

ENV_HANDLER_LIMIT = "TARS_HANDLER_LIMIT"
DEFAULT_HANDLER_LIMIT = 30.0
EXIT_CONFIG = 78  # sysexits EX_CONFIG; the units say RestartPreventExitStatus=78
_CHECK_INTERVAL = 5.0  # how often liveness is checked (and logged) without a systemd watchdog
_RETRY_MIN, _RETRY_MAX = 0.5, 5.0  # waiting for a broker that is down at start-up


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
        try:
            with socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC) as sock:
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


def handler_limit_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``$TARS_HANDLER_LIMIT`` (seconds a handler may run before it counts as wedged).

    Raises:
        ConfigError: not a positive number.
    """
    env = os.environ if environ is None else environ
    raw = env.get(ENV_HANDLER_LIMIT, "").strip()
    if not raw:
        return DEFAULT_HANDLER_LIMIT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_HANDLER_LIMIT}: must be a number of seconds, got {raw!r}"
                          ) from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"{ENV_HANDLER_LIMIT}: must be > 0 s, got {raw!r}")
    return value


def serve(client: MQTTClient, *, handler_limit: float | None = None,
          notifier: Notifier | None = None, stop_event: threading.Event | None = None) -> int:
    """Run ``client`` as a systemd ``Type=notify`` service until SIGTERM/SIGINT.

    Starts the client unless it already runs (retrying while the broker is unreachable),
    sends ``READY=1``, runs the ``tars-sd-watchdog`` thread, blocks until a signal or
    ``stop_event``, then sends ``STOPPING=1`` and stops the client.

    Args:
        handler_limit: seconds one handler may run before the service counts as wedged;
            default ``$TARS_HANDLER_LIMIT``, else 30.
        notifier: default ``Notifier()`` (from ``$NOTIFY_SOCKET``).
        stop_event: set it to stop (signals are only caught on the main thread).

    Returns:
        The exit code for ``main()``: 0 after a clean stop, :data:`EXIT_CONFIG` (78) when
        the broker refused the credentials or a subscription, or its TLS certificate failed.
    """
    limit = handler_limit_from_env() if handler_limit is None else handler_limit
    notifier = Notifier() if notifier is None else notifier
    stop = threading.Event() if stop_event is None else stop_event
    restore = stop_on_signals(stop)
    try:
        code = _start(client, notifier, stop)
        if code is not None:
            return code
        cfg = client.config
        notifier.ready(f"connected to {cfg.host}:{cfg.port} as {cfg.client_id}")
        watchdog = _Watchdog(client, notifier, limit)
        watchdog.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            watchdog.stop()
        notifier.stopping()
        return 0
    finally:
        restore()
        client.stop()


def _start(client: MQTTClient, notifier: Notifier, stop: threading.Event) -> int | None:
    """Start the client; None once it runs, else the exit code (stopped before connecting)."""
    delay = _RETRY_MIN
    while not stop.is_set():
        try:
            client.start()
            return None
        except ConnectError as exc:
            if exc.reason in ("bad_credentials", "not_authorized", "tls"):
                log.error("%s: check MQTT_USERNAME, MQTT_PASSWORD_FILE and MQTT_TLS_*", exc)
                return EXIT_CONFIG
            log.warning("%s; retrying in %.1f s", exc, delay)
            notifier.send(STATUS=f"waiting for the broker: {exc}")
        except SubscribeError as exc:
            log.error("%s", exc)
            return EXIT_CONFIG
        except MQTTError:  # "already running": the caller started it
            return None
        stop.wait(delay)
        delay = min(delay * 2, _RETRY_MAX)
    notifier.stopping()
    return 0


class _Watchdog:
    """The ``tars-sd-watchdog`` thread: ping while the client is live, log when it is not."""

    def __init__(self, client: MQTTClient, notifier: Notifier, limit: float) -> None:
        self._client = client
        self._notifier = notifier
        self._limit = limit
        self._interval = notifier.watchdog_interval or _CHECK_INTERVAL
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tars-sd-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self._interval + 5.0)

    def _run(self) -> None:
        wedged: str | None = None
        while True:
            try:
                problem = self._client.liveness_problem(self._limit)
            except Exception as exc:  # a watchdog that cannot look must not ping
                problem = f"liveness check failed: {exc!r}"
            if problem is None:
                if wedged is not None:
                    log.warning("client %s recovered; watchdog pings resume",
                                self._client.config.client_id)
                    self._notifier.send(STATUS="running")
                    wedged = None
                if self._notifier.watchdog_interval is not None:
                    self._notifier.watchdog()
            elif wedged is None:
                log.error("client %s is wedged, watchdog pings stop: %s",
                          self._client.config.client_id, problem)
                self._notifier.send(STATUS=f"wedged: {problem}")
                wedged = problem
            if self._stopping.wait(self._interval):
                return
