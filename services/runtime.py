"""The one way a TARS process runs: ``main()`` is a service's handlers plus one call here.

:func:`run` (threaded services) and :func:`run_async` (asyncio services) do the same
things in the same order, so every service behaves alike under systemd:

1. logging to stderr at ``$TARS_LOG_LEVEL``; settings from ``MQTT_*`` and ``TARS_*``;
2. ``setup(client)``: the service reads its own settings, builds its hardware or
   engines and subscribes its handlers; a :class:`~tars_mqtt.ConfigError` or
   :class:`~hw.HardwareError` there ends the process with :data:`EXIT_SETTINGS`;
3. start, waiting out a broker that is down (:mod:`tars_mqtt.runner`); refused
   credentials, TLS or a refused subscription end it with :data:`EXIT_CONFIG`;
4. ``READY=1``, then ``WATCHDOG=1`` every tick while neither the client nor the
   service's own ``liveness`` check finds anything wrong (:mod:`services.sdnotify`);
5. on SIGTERM/SIGINT: ``STOPPING=1``, the service's ``stopping`` hook (the client still
   publishes), the client's clean stop, then the service's ``close`` hook.

The unit files say ``RestartPreventExitStatus=2 78``: restarting cannot fix either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hw import HardwareError
from tars_mqtt import ConfigError, ConnectError, MQTTClient, MQTTConfig, MQTTError, runner
from tars_mqtt.aio import AsyncMQTTClient

from .common import env_float
from .sdnotify import Notifier

__all__ = [
    "DEFAULT_HANDLER_LIMIT", "ENV_HANDLER_LIMIT", "EXIT_CONFIG", "EXIT_CRASHED", "EXIT_OK",
    "EXIT_SETTINGS", "SESSION_EXPIRY", "AsyncService", "Service", "Watch",
    "handler_limit_from_env", "run", "run_async", "serve", "serve_async", "setup_logging",
]

log = logging.getLogger("tars.services")

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_SETTINGS = 2   # a setting in the environment is wrong
EXIT_CONFIG = 78    # sysexits EX_CONFIG: the broker refused our login, TLS or subscription
ENV_HANDLER_LIMIT = "TARS_HANDLER_LIMIT"
DEFAULT_HANDLER_LIMIT = 30.0
#: A service's session outlives a restart by this long (``MQTT_SESSION_EXPIRY`` overrides):
#: the QoS 1 commands sent while it restarts wait at the broker instead of being lost.
SESSION_EXPIRY = 3600

Liveness = Callable[[], str | None]


@dataclass(frozen=True)
class Service:
    """What a threaded service adds to the process life cycle; every hook is optional.

    Attributes:
        stopping: a stop was asked for; the client still publishes (end a motion, report).
        close: the client has stopped; release pins and files.
        liveness: why one of the service's own threads is dead or stuck, else None.
    """

    stopping: Callable[[], None] | None = None
    close: Callable[[], None] | None = None
    liveness: Liveness | None = None


@dataclass(frozen=True)
class AsyncService:
    """What an asyncio service adds: ``main()`` runs on the loop once connected.

    ``main`` returning ends the process cleanly, raising ends it with
    :data:`EXIT_CRASHED`; it is cancelled when a stop is asked for.
    """

    main: Callable[[], Awaitable[None]] | None = None
    stopping: Callable[[], Awaitable[None]] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    liveness: Liveness | None = None


def setup_logging(environ: Mapping[str, str] = os.environ) -> None:
    """Log to stderr (journald adds the time) at ``$TARS_LOG_LEVEL`` (default INFO)."""
    level = environ.get("TARS_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


class Watch:
    """One tick of the watchdog: ping systemd while nothing is wrong, say so once when not."""

    def __init__(self, client: MQTTClient, notifier: Notifier, handler_limit: float,
                 liveness: Liveness | None = None) -> None:
        self._client, self._notifier = client, notifier
        self._limit, self._liveness = handler_limit, liveness
        self._problem: str | None = None

    def problem(self) -> str | None:
        """The client's liveness problem, else the service's own."""
        try:
            found = self._client.liveness_problem(self._limit)
            if found is None and self._liveness is not None:
                found = self._liveness()
            return found
        except Exception as exc:  # a watchdog that cannot look must not ping
            return f"liveness check failed: {exc!r}"

    def tick(self) -> None:
        problem, cid = self.problem(), self._client.config.client_id
        if problem is None:
            if self._problem is not None:
                log.warning("%s recovered; watchdog pings resume", cid)
                self._notifier.send(STATUS="running")
            self._notifier.watchdog()
        elif self._problem is None:
            log.error("%s is wedged, watchdog pings stop: %s", cid, problem)
            self._notifier.send(STATUS=f"wedged: {problem}")
        self._problem = problem


def run(client_id: str, setup: Callable[[MQTTClient], Service | None], *,
        environ: Mapping[str, str] | None = None) -> int:
    """``main()`` of a threaded service: ``return run("movement", setup)``; the exit code."""
    env = os.environ if environ is None else environ
    setup_logging(env)
    try:
        limit = handler_limit_from_env(env)
        client = MQTTClient(_config(env, client_id))
        service = setup(client)
    except (ConfigError, HardwareError) as exc:
        return _cannot_start(client_id, exc)
    return serve(client, service, notifier=Notifier(env), handler_limit=limit)


def serve(client: MQTTClient, service: Service | None = None, *,
          notifier: Notifier | None = None, handler_limit: float | None = None,
          stop: threading.Event | None = None) -> int:
    """Serve ``client`` (built, subscribed) as a systemd service; the exit code.

    ``handler_limit`` defaults to ``$TARS_HANDLER_LIMIT``, ``notifier`` to
    ``$NOTIFY_SOCKET``'s; ``stop`` ends it like SIGTERM does (signals are caught on the
    main thread only).
    """
    service = service or Service()
    handler_limit = handler_limit_from_env() if handler_limit is None else handler_limit
    notifier = Notifier() if notifier is None else notifier
    watch = Watch(client, notifier, handler_limit, service.liveness)

    def stopping() -> None:
        notifier.stopping()
        if service.stopping is not None:
            service.stopping()

    try:
        runner.run(client, stop=stop, on_ready=lambda: _ready(client, notifier),
                   on_tick=watch.tick, on_stopping=stopping, on_wait=_waiting(notifier),
                   tick=_tick(notifier))
    except Exception as exc:
        return _exit_code(client.config.client_id, exc)
    else:
        return _exit_code(client.config.client_id, None)
    finally:
        if service.close is not None:
            service.close()


def run_async(client_id: str, setup: Callable[[AsyncMQTTClient], AsyncService | None], *,
              environ: Mapping[str, str] | None = None) -> int:
    """``main()`` of an asyncio service: ``return run_async("router", setup)``."""
    env = os.environ if environ is None else environ
    setup_logging(env)
    try:
        limit = handler_limit_from_env(env)
        client = AsyncMQTTClient(_config(env, client_id))
    except ConfigError as exc:
        return _cannot_start(client_id, exc)

    async def main() -> int:
        try:
            service = setup(client)  # inside the loop: it may make queues and tasks
        except (ConfigError, HardwareError) as exc:
            return _cannot_start(client_id, exc)
        return await serve_async(client, service, notifier=Notifier(env), handler_limit=limit)

    return asyncio.run(main())


async def serve_async(client: AsyncMQTTClient, service: AsyncService | None = None, *,
                      notifier: Notifier | None = None,
                      handler_limit: float | None = None) -> int:
    """:func:`serve` for the asyncio twin; the exit code."""
    service = service or AsyncService()
    handler_limit = handler_limit_from_env() if handler_limit is None else handler_limit
    notifier = Notifier() if notifier is None else notifier
    watch = Watch(client.sync, notifier, handler_limit, service.liveness)

    async def stopping() -> None:
        notifier.stopping()
        if service.stopping is not None:
            await service.stopping()

    try:
        await runner.run_async(client, main=service.main,
                               on_ready=lambda: _ready(client.sync, notifier),
                               on_tick=watch.tick, on_stopping=stopping,
                               on_wait=_waiting(notifier), tick=_tick(notifier))
    except Exception as exc:
        return _exit_code(client.config.client_id, exc)
    else:
        return _exit_code(client.config.client_id, None)
    finally:
        if service.close is not None:
            await service.close()


def _config(env: Mapping[str, str], client_id: str) -> MQTTConfig:
    """``MQTT_*`` over a service's defaults: its name as client id, a persistent session."""
    return MQTTConfig.from_env(environ=env, client_id=client_id,
                               defaults={"session_expiry": SESSION_EXPIRY})


def _cannot_start(client_id: str, exc: Exception) -> int:
    """A bad setting or hardware that cannot be opened: say which, and do not restart."""
    log.error("%s cannot start: %s", client_id, exc)
    return EXIT_SETTINGS


def _exit_code(client_id: str, exc: Exception | None) -> int:
    if exc is None:
        log.info("%s stopped", client_id)
        return EXIT_OK
    if isinstance(exc, MQTTError) and runner.is_fatal(exc):
        log.error("%s cannot run: %s", client_id, runner.describe(exc))
        return EXIT_CONFIG
    log.error("%s crashed", client_id, exc_info=exc)
    return EXIT_CRASHED


def _ready(client: MQTTClient, notifier: Notifier) -> None:
    cfg = client.config
    log.info("%s ready", cfg.client_id)
    notifier.ready(f"connected to {cfg.host}:{cfg.port} as {cfg.client_id}")


def _waiting(notifier: Notifier) -> Callable[[ConnectError, float], None]:
    return lambda exc, delay: notifier.send(STATUS=f"waiting for the broker: {exc}")


def _tick(notifier: Notifier) -> float:
    """Check (and ping) every second, or at half the watchdog interval when that is sooner."""
    return min(runner.TICK, notifier.watchdog_interval or runner.TICK)


def handler_limit_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``$TARS_HANDLER_LIMIT``: seconds a handler may run before the service counts as wedged.

    Raises:
        ConfigError: not a number from 0.001 to 1e6.
    """
    env = os.environ if environ is None else environ
    return env_float(env, ENV_HANDLER_LIMIT, DEFAULT_HANDLER_LIMIT, low=0.001, high=1e6)
