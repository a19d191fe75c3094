"""Counters: per-thread counts summed exactly, also after their threads finished."""

from __future__ import annotations

import threading

from tars_mqtt.stats import Counters


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
