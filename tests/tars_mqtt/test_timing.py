"""Backoff maths, the deduplicator's TTL and bound, and the stats snapshot: no sleeping."""

from __future__ import annotations

import dataclasses
import random

import pytest

from tars_mqtt import ClientStats
from tars_mqtt.dedupe import Deduplicator
from tars_mqtt.stats import Counters
from tars_mqtt.testing import ManualClock
from tars_mqtt.timing import Backoff


def test_backoff_ceiling_doubles_then_caps() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.ceiling(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.ceiling(10_000) == 5.0  # no overflow on a long outage
    assert backoff.ceiling(-3) == 1.0


def test_backoff_delays_stay_in_bounds_and_spread() -> None:
    backoff = Backoff(0.5, 5.0)
    rng = random.Random(7)
    for attempt in range(12):
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(0.5 <= d <= backoff.ceiling(attempt) for d in delays)
        assert max(delays) - min(delays) > 0.1  # jitter: clients do not retry in lockstep


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    backoff = Backoff(0.1, 2.0)
    first = [backoff.delay(n, random.Random(3)) for n in range(6)]
    assert first == [backoff.delay(n, random.Random(3)) for n in range(6)]


def test_backoff_min_equals_max() -> None:
    assert Backoff(1.0, 1.0).delay(5, random.Random(1)) == 1.0
    assert Backoff(0.0, 0.0).delay(0) == 0.0


def test_backoff_is_an_immutable_value() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Backoff().min_delay = 1.0  # type: ignore[misc]


def test_dedupe_off_when_ttl_is_zero() -> None:
    dedupe = Deduplicator(0, 10)
    assert not dedupe.enabled
    assert not dedupe.is_duplicate("a") and not dedupe.is_duplicate("a")
    assert len(dedupe) == 0


def test_dedupe_within_ttl_then_forgets() -> None:
    clock = ManualClock()
    dedupe = Deduplicator(10.0, 100, clock=clock)
    assert dedupe.is_duplicate("a") is False
    clock.advance(9.9)
    assert dedupe.is_duplicate("a") is True
    assert dedupe.is_duplicate("b") is False
    clock.advance(0.2)  # "a" is now 10.1 s old, "b" 0.2 s
    assert dedupe.is_duplicate("a") is False
    assert dedupe.is_duplicate("b") is True


def test_dedupe_bounded_by_max_entries() -> None:
    clock = ManualClock()
    dedupe = Deduplicator(60.0, 3, clock=clock)
    for name in "abcd":
        assert not dedupe.is_duplicate(name)
    assert len(dedupe) == 3
    assert not dedupe.is_duplicate("a")  # the oldest went first
    assert dedupe.is_duplicate("d")


def test_stats_snapshot_and_percentiles() -> None:
    counters = Counters()
    counters.add("received", 3)
    counters.add("dropped")
    for ms in range(1, 101):
        counters.record_latency(ms / 1000)
    snap = counters.snapshot(queue_depth=4, offline_queued=2)
    assert (snap.received, snap.dropped, snap.queue_depth, snap.offline_queued) == (3, 1, 4, 2)
    assert snap.handler_latency_p50 == pytest.approx(0.051)
    assert snap.handler_latency_p99 == pytest.approx(0.100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.received = 0  # type: ignore[misc]
    assert Counters().snapshot(queue_depth=0, offline_queued=0).handler_latency_p99 == 0.0


def test_stats_names_are_the_documented_list() -> None:
    names = {f.name for f in dataclasses.fields(ClientStats)}
    assert {"published", "received", "dispatched", "dropped", "duplicates", "decode_errors",
            "handler_errors", "reconnects", "queue_depth", "offline_queued",
            "handler_latency_p50", "handler_latency_p99"} <= names
    assert set(ClientStats().to_dict()) == names
