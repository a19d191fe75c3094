"""The one way a tars_mqtt process runs: start, serve until told to stop, stop cleanly.

``MQTTClient.run_forever``, ``AsyncMQTTClient.run_forever`` and the TARS service runtime
all run here, so they share one rule for what ends a process:

- a broker that is down is waited for (retrying on :class:`~tars_mqtt.timing.Backoff`);
- refused credentials, a failed TLS handshake or a refused subscription are
  configuration problems: retrying only hammers the broker, so they are raised;
- SIGTERM/SIGINT (or ``stop``) is a clean stop: ``on_stopping``, then ``client.stop()``.

The async flavour runs the same start-up loop in a thread and ticks on the event loop,
so a wedged loop stops the ticks (and with them a service's watchdog pings).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .errors import ConnectError, MQTTError, SubscribeError
from .signals import stop_on_signals
from .state import ClientState
from .timing import Backoff

__all__ = [
    "FATAL_REASONS", "START_BACKOFF", "TICK", "AsyncClient", "Client", "describe", "is_fatal",
    "run", "run_async", "start_when_reachable",
]

log = logging.getLogger("tars_mqtt")

#: ``ConnectError.reason`` values that retrying cannot fix.
FATAL_REASONS = frozenset({"bad_credentials", "not_authorized", "tls", "protocol"})
START_BACKOFF = Backoff(0.5, 5.0)
TICK = 1.0  # seconds between checks of the client (and a service's watchdog pings)

OnWait = Callable[[ConnectError, float], None]


class Client(Protocol):
    """What running needs of ``MQTTClient`` (a protocol: the client imports this module)."""

    @property
    def state(self) -> ClientState: ...

    @property
    def fatal_error(self) -> ConnectError | None: ...

    def start(self, timeout: float = ...) -> Any: ...

    def stop(self, timeout: float = ...) -> None: ...


class AsyncClient(Protocol):
    """What running needs of ``AsyncMQTTClient``."""

    @property
    def state(self) -> ClientState: ...

    @property
    def sync(self) -> Client: ...

    async def start(self, timeout: float = ...) -> Any: ...

    async def stop(self, timeout: float = ...) -> None: ...


def is_fatal(exc: BaseException) -> bool:
    """True for a start-up failure that is a configuration problem, not an outage."""
    if isinstance(exc, ConnectError):
        return exc.reason in FATAL_REASONS
    return isinstance(exc, SubscribeError)


def start_when_reachable(start: Callable[[], Any], stop: threading.Event, *,
                         backoff: Backoff = START_BACKOFF, on_wait: OnWait | None = None,
                         rng: random.Random | None = None) -> bool:
    """Call ``start()`` until it succeeds, waiting out a broker that is down.

    Returns:
        True once started; False when ``stop`` was set first.

    Raises:
        ConnectError: the broker refused the credentials, or TLS failed (:func:`is_fatal`).
        SubscribeError: the broker refused a subscription.
    """
    attempt = 0
    while not stop.is_set():
        try:
            start()
            return True
        except ConnectError as exc:
            if is_fatal(exc):
                raise
            delay = backoff.delay(attempt, rng)
            attempt += 1
            log.warning("%s; retrying in %.1f s", exc, delay)
            if on_wait is not None:
                on_wait(exc, delay)
        stop.wait(delay)
    return False


def run(client: Client, *, stop: threading.Event | None = None,
        on_ready: Callable[[], None] | None = None, on_tick: Callable[[], None] | None = None,
        on_stopping: Callable[[], None] | None = None, on_wait: OnWait | None = None,
        tick: float = TICK) -> None:
    """Start ``client`` (unless it runs), serve until SIGTERM/SIGINT or ``stop``, then stop it.

    ``on_tick`` runs every ``tick`` seconds on the calling thread; ``on_stopping`` once
    a stop was asked for, while the client still publishes.

    Raises:
        ConnectError: refused credentials or TLS, at start-up or on a later reconnect.
        SubscribeError: a subscription was refused at start-up.
    """
    stop = threading.Event() if stop is None else stop
    restore = stop_on_signals(stop)  # before connecting: a SIGTERM then is a clean stop too
    try:
        if client.state == ClientState.NEW and not start_when_reachable(client.start, stop,
                                                              on_wait=on_wait):
            if on_stopping is not None:
                on_stopping()
            return
        if on_ready is not None:
            on_ready()
        while not stop.wait(tick):
            _raise_fatal(client)
            if on_tick is not None:
                on_tick()
        if on_stopping is not None:
            on_stopping()
    finally:
        restore()
        client.stop()


async def run_async(client: AsyncClient, *,
                    main: Callable[[], Awaitable[None]] | None = None,
                    on_ready: Callable[[], None] | None = None,
                    on_tick: Callable[[], None] | None = None,
                    on_stopping: Callable[[], Awaitable[None]] | None = None,
                    on_wait: OnWait | None = None, tick: float = TICK) -> None:
    """:func:`run` for the asyncio twin; ``main()`` runs once connected.

    ``main`` returning ends the run cleanly; ``main`` raising ends it with that exception
    (after a clean stop). It is cancelled when a stop is asked for.
    """
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    restore = stop_on_signals(stop)

    def start() -> None:  # on the start-up thread; the twin's start binds this loop
        asyncio.run_coroutine_threadsafe(client.start(), loop).result()

    tasks: list[asyncio.Task[Any]] = []
    try:
        if client.state == ClientState.NEW and not await asyncio.to_thread(
                start_when_reachable, start, stop, on_wait=on_wait):
            if on_stopping is not None:
                await on_stopping()
            return
        if on_ready is not None:
            on_ready()
        tasks.append(asyncio.create_task(asyncio.to_thread(stop.wait), name="tars-stop"))
        tasks.append(asyncio.create_task(_ticks(client, on_tick, tick), name="tars-tick"))
        if main is not None:
            tasks.append(asyncio.create_task(_call(main), name="tars-main"))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if on_stopping is not None:
            await on_stopping()
    finally:
        stop.set()  # frees the thread waiting on it
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        restore()
        await client.stop()


async def _call(main: Callable[[], Awaitable[None]]) -> None:
    await main()


async def _ticks(client: AsyncClient, on_tick: Callable[[], None] | None,
                 tick: float) -> None:
    """Check the client every tick; end when someone stopped it (``await client.stop()``)."""
    while client.state != ClientState.STOPPED:
        await asyncio.sleep(tick)
        _raise_fatal(client.sync)
        if on_tick is not None:
            on_tick()


def _raise_fatal(client: Client) -> None:
    problem = client.fatal_error
    if problem is not None:
        raise problem


def describe(exc: MQTTError) -> str:
    """What an operator should check after a fatal start-up error."""
    if isinstance(exc, ConnectError) and exc.reason == "protocol":
        return str(exc)  # it names the setting already
    if isinstance(exc, ConnectError) and exc.reason == "tls":
        return f"{exc}: check MQTT_TLS_CA, MQTT_TLS_CERT, MQTT_TLS_KEY and the broker's certificate"
    if isinstance(exc, ConnectError):
        return f"{exc}: check MQTT_USERNAME and MQTT_PASSWORD_FILE"
    return f"{exc}: check the login's ACL"
