"""stop_on_signals: SIGTERM/SIGINT become a stop request, and the old handlers come back."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tars_mqtt.signals import stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_sets_the_event_and_restore_puts_the_old_handler_back(
        signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        os.kill(os.getpid(), signum)
        assert stop.wait(5), f"{signum.name} did not set the stop event"
    finally:
        restore()
    assert signal.getsignal(signum) is before


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(stop_on_signals(threading.Event())))
    worker.start()
    worker.join(5)
    assert len(results) == 1 and callable(results[0])
    assert signal.getsignal(signal.SIGTERM) is before
