"""BrokerRing: which broker each attempt goes to, when to wait, what start() reports."""

from __future__ import annotations

import pytest

from tars_mqtt import ConnectError, MQTTConfig
from tars_mqtt.failover import BrokerRing


def _ring(*hosts: str) -> BrokerRing:
    url = ",".join(f"mqtt://{host}:1883" for host in hosts)
    return BrokerRing(MQTTConfig(url=url, client_id="c").brokers)


def _unreachable(host: str) -> ConnectError:
    return ConnectError(f"broker {host}:1883 is unreachable", reason="unreachable")


def test_it_stays_while_the_link_holds_and_moves_on_when_it_is_lost() -> None:
    ring = _ring("a", "b", "c")
    assert ring.next_attempt().host == "a"
    ring.connected()
    assert ring.next_attempt().host == "a"  # a reconnect that needed no failover
    ring.connected()
    ring.lost()
    assert ring.next_attempt().host == "b"
    ring.connected()
    ring.lost()
    assert [ring.next_attempt().host for _ in range(3)] == ["c", "a", "b"]  # a ring


def test_untried_brokers_go_at_once_and_a_failed_lap_backs_off() -> None:
    ring = _ring("a", "b", "c")
    waits = []
    for _ in range(6):
        ring.next_attempt()
        waits.append(not ring.failed())  # True: back off before the next attempt
    assert waits == [False, False, True, False, False, True]
    ring.connected()  # a success starts a new lap
    ring.lost()
    ring.next_attempt()
    assert ring.failed() is True  # b answered nothing: c next, at once


def test_one_broker_backs_off_after_every_failure() -> None:
    ring = _ring("a")
    for _ in range(3):
        assert ring.next_attempt().host == "a"
        assert ring.failed() is False


def test_start_hears_once_every_broker_failed_with_each_named() -> None:
    ring = _ring("a", "b")
    assert ring.start_failed(_unreachable("a")) is None
    error = ring.start_failed(_unreachable("b"))
    assert error is not None and error.reason == "unreachable"
    assert str(error) == ("no broker answered: broker a:1883 is unreachable;"
                          " broker b:1883 is unreachable")


def test_a_final_refusal_is_reported_at_once() -> None:
    ring = _ring("a", "b")
    refused = ConnectError("bad login", reason="bad_credentials")
    assert ring.start_failed(refused, final=True) is refused


def test_one_broker_reports_its_own_error_unchanged() -> None:
    ring = _ring("a")
    error = _unreachable("a")
    assert ring.start_failed(error) is error


def test_reset_goes_back_to_the_first() -> None:
    ring = _ring("a", "b")
    ring.next_attempt()
    ring.failed()
    assert ring.next_attempt().host == "b"
    ring.reset()
    assert ring.next_attempt().host == "a"


def test_no_broker_is_refused() -> None:
    with pytest.raises(ValueError):
        BrokerRing(())
