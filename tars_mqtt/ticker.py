"""The client's one timer thread: periodic work (heartbeat, watchdog) and work on demand."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Ticker"]

log = logging.getLogger("tars_mqtt")


class Ticker:
    """Runs ``tick`` every ``interval`` seconds and ``on_poke`` soon after each ``poke()``.

    Work that must not run on paho's network thread (publishing health, flushing the
    offline queue after a reconnect) is poked here. A failing callback is logged; the
    thread lives on.
    """

    def __init__(self, name: str, interval: float, tick: Callable[[], None],
                 on_poke: Callable[[], None]) -> None:
        self.interval = interval
        self._tick = tick
        self._on_poke = on_poke
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._poked = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._poked = True
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        next_tick = time.monotonic() + self.interval
        while not self._stopping.is_set():
            if self._poked:
                self._poked = False
                self._call(self._on_poke)
            now = time.monotonic()
            if now >= next_tick:
                self._call(self._tick)
                next_tick = now + self.interval
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()

    @staticmethod
    def _call(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:
            log.exception("timer work %s failed", getattr(work, "__name__", work))
