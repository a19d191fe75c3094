"""Reconnect backoff: the pure policy, and how the transport feeds it to paho.

No broker and no sleeping: delays are computed, and paho's next wait is read back from
the values the transport hands it.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from tars_mqtt import MQTTConfig
from tars_mqtt.timing import Backoff
from tars_mqtt.transport import Transport


# The policy ---------------------------------------------------------------------------
def test_ceiling_doubles_from_min_and_stops_at_max() -> None:
    backoff = Backoff(min_delay=0.5, max_delay=5.0)
    assert [backoff.ceiling(n) for n in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 10, 59, 60, 61, 10_000])
def test_every_delay_stays_within_min_and_max(attempt: int) -> None:
    backoff = Backoff(min_delay=0.2, max_delay=3.0)
    rng = random.Random(attempt)
    delays = [backoff.delay(attempt, rng) for _ in range(500)]
    assert min(delays) >= 0.2
    assert max(delays) <= min(3.0, backoff.ceiling(attempt))


def test_negative_attempt_is_treated_as_the_first() -> None:
    backoff = Backoff(min_delay=1.0, max_delay=8.0)
    assert backoff.ceiling(-3) == backoff.ceiling(0) == 2.0


def test_equal_bounds_give_a_fixed_delay() -> None:
    backoff = Backoff(min_delay=0.7, max_delay=0.7)
    assert {backoff.delay(n, random.Random(n)) for n in range(20)} == {0.7}


def test_zero_min_delay_still_backs_off_only_to_zero() -> None:
    """min 0 means "retry at once": the ceiling never grows from zero."""
    backoff = Backoff(min_delay=0.0, max_delay=5.0)
    assert backoff.delay(7, random.Random(1)) == 0.0


def test_same_seed_same_delays() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=2.0)
    first = [backoff.delay(n, random.Random(42)) for n in range(8)]
    again = [backoff.delay(n, random.Random(42)) for n in range(8)]
    assert first == again


def test_later_attempts_wait_longer_on_average() -> None:
    backoff = Backoff(min_delay=0.1, max_delay=10.0)
    rng = random.Random(7)
    means = [statistics.fmean(backoff.delay(n, rng) for _ in range(2000)) for n in range(5)]
    print("mean delay per attempt:", [round(m, 3) for m in means])
    assert means == sorted(means)
    assert means[4] > 3 * means[0]


def test_clients_that_lost_the_same_broker_spread_out() -> None:
    """20 clients on their own random streams: no storm of simultaneous retries."""
    backoff = Backoff(min_delay=0.5, max_delay=5.0)
    rngs = [random.Random(seed) for seed in range(20)]
    for attempt in range(4):
        delays = sorted(backoff.delay(attempt, rng) for rng in rngs)
        spread = delays[-1] - delays[0]
        width = backoff.ceiling(attempt) - backoff.min_delay
        print(f"attempt {attempt}: spread {spread:.3f} s of a {width:.3f} s window")
        assert len(set(delays)) == 20
        assert spread > 0.5 * width
        # no more than a third of the clients inside any tenth of the window
        for low in delays:
            assert sum(low <= d < low + width / 10 for d in delays) <= 7


# The transport feeds it to paho --------------------------------------------------------
@dataclass(frozen=True)
class RecordingBackoff(Backoff):
    """Answers ``10 + attempt`` so each delay names the attempt it was computed for."""

    asked: list[int] = field(default_factory=list, compare=False)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        self.asked.append(attempt)
        return 10.0 + attempt


def _transport(backoff: Backoff | None = None, **fields: Any) -> Transport:
    """A transport that never connects: only its bookkeeping of waits is exercised."""
    def ignore(*args: Any) -> None:
        return None

    config = MQTTConfig(url="mqtt://127.0.0.1:1", client_id="backoff-unit", **fields)
    return Transport(config, will=None, on_connected=ignore, on_disconnected=ignore,
                     on_message=ignore, on_ack=ignore, on_suback=ignore, backoff=backoff,
                     rng=random.Random(3))


def _next_wait(transport: Transport) -> float:
    """The wait the network thread takes before its next attempt."""
    return transport.next_delay


def _connack(transport: Transport) -> None:
    flags = SimpleNamespace(session_present=False)
    transport._handle_connect(transport.client, None, flags,
                              ReasonCode(PacketTypes.CONNACK, "Success"), None)


def _lost(transport: Transport, *, was_connected: bool) -> None:
    transport.connected = was_connected
    transport._handle_disconnect(transport.client, None, None,
                                 ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"), None)


def test_failed_attempts_walk_up_the_policy() -> None:
    transport = _transport(RecordingBackoff())
    assert _next_wait(transport) == 10.0  # before the very first connection
    waits = []
    for _ in range(3):
        transport._handle_connect_fail(transport.client, None)
        waits.append(_next_wait(transport))
    assert waits == [11.0, 12.0, 13.0]


def test_after_a_lost_link_the_first_retry_uses_attempt_zero() -> None:
    transport = _transport(RecordingBackoff())
    for _ in range(4):
        transport._handle_connect_fail(transport.client, None)
    _connack(transport)
    _lost(transport, was_connected=True)
    assert _next_wait(transport) == 10.0
    transport._handle_connect_fail(transport.client, None)
    assert _next_wait(transport) == 11.0


def test_an_attempt_dropped_before_connack_counts_as_a_failure() -> None:
    """A TCP link that dies before CONNACK (watchdog kick, black hole) still backs off."""
    transport = _transport(RecordingBackoff())
    _connack(transport)
    _lost(transport, was_connected=True)
    _lost(transport, was_connected=False)
    _lost(transport, was_connected=False)
    assert _next_wait(transport) == 12.0


def test_the_transport_uses_the_configured_bounds_by_default() -> None:
    transport = _transport(reconnect_min_delay=0.25, reconnect_max_delay=0.75)
    waits = []
    for _ in range(30):
        transport._handle_connect_fail(transport.client, None)
        waits.append(_next_wait(transport))
    assert all(0.25 <= w <= 0.75 for w in waits)
    assert len(set(waits)) > 20  # jittered, not one fixed number
