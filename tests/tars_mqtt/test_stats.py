"""Counters: per-thread counts summed exactly, also after their threads finished; log throttling."""

from __future__ import annotations

import threading

from tars_mqtt.stats import Counters, LogThrottle


def test_counts_from_many_threads_are_exact_and_survive_their_threads() -> None:
    counters = Counters()
    start = threading.Barrier(8)

    def bump() -> None:
        start.wait()
        for _ in range(20_000):
            counters.add("received")
            counters.add("dropped", 2)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads[:4]:
        thread.join()
    assert counters.get("received") >= 4 * 20_000  # folds the finished ones meanwhile
    for thread in threads[4:]:
        thread.join()
    counters.add("received")  # this thread too
    snap = counters.snapshot(queue_depth=0, offline_queued=0)
    assert (snap.received, snap.dropped) == (8 * 20_000 + 1, 8 * 40_000)
    assert counters.get("received") == 8 * 20_000 + 1  # folding twice counts nothing twice
    assert len(counters._threads) == 1  # only this (live) thread is still listed


def test_latency_percentiles() -> None:
    counters = Counters(latency_window=4)
    for value in (9.0, 1.0, 2.0, 3.0, 4.0):  # the window keeps the last 4
        counters.record_latency(value)
    snap = counters.snapshot(queue_depth=0, offline_queued=0)
    assert (snap.handler_latency_p50, snap.handler_latency_p99) == (3.0, 4.0)


def test_log_throttle_lets_a_burst_through_then_counts_the_rest() -> None:
    throttle = LogThrottle(interval=3600, burst=3)
    assert [throttle.allow() for _ in range(5)] == [0, 0, 0, None, None]
    throttle._window_end = 0.0  # the interval has passed
    assert throttle.allow() == 2  # the two that were not logged


def test_counters_throttle_each_name_on_its_own() -> None:
    counters = Counters()
    logged = [counters.add_logged("decode_errors") for _ in range(12)]
    assert logged.count(None) == 2 and counters.get("decode_errors") == 12
    assert counters.add_logged("handler_errors") == 0
