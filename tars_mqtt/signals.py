"""SIGTERM/SIGINT as a stop request, for ``run_forever`` and the service runners."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["stop_on_signals"]

log = logging.getLogger("tars_mqtt")


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM/SIGINT set ``stop``; returns the function that restores the old handlers.

    Only the main thread may install handlers; elsewhere this does nothing. Install them
    before connecting: a SIGTERM while still connecting (systemd stopping a service that
    is starting) must end in a clean stop, not the default kill.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, on_signal)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
