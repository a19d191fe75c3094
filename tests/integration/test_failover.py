"""Failover, shown: a QoS 1 stream between two clients while the broker they are on is killed.

Two mosquittos bridged to each other (``topic # both 1``); both clients have
``MQTT_URL=first,second``. The first is SIGKILLed mid-stream: the clients must move to the
second by themselves, resubscribe, flush what they kept offline and carry on. The figures
are printed (``-s``) for docs/brokers.md; what must hold whatever the timing is asserted
in :meth:`FailoverRun.finish`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tars_mqtt import ConnectError, MQTTClient
from tars_mqtt.testing import Broker, free_port
from tests.support.failover import KILL_AT, FailoverRun

MakeClient = Callable[..., MQTTClient]


def _bridge_to(broker: Broker) -> str:
    """mosquitto.conf lines: a bridge carrying every topic both ways at QoS 1."""
    return "\n".join([
        "connection failover-bridge",
        f"address 127.0.0.1:{broker.port}",
        "topic # both 1",
        "cleansession true",
        "restart_timeout 1",
        "notifications false",
    ])


def test_start_goes_past_a_broker_that_is_down_at_once(
        broker: Broker, make_client: MakeClient) -> None:
    down = f"mqtt://127.0.0.1:{free_port()}"
    # A 30 s backoff: had start() waited before trying the second broker, it would time out.
    client = make_client(start=False, url=f"{down},{broker.url}",
                         reconnect_min_delay=30, reconnect_max_delay=30)
    client.start(timeout=10)
    assert client.stats().broker == broker.url


def test_start_with_every_broker_down_names_each(make_client: MakeClient) -> None:
    ports = free_port(), free_port()
    client = make_client(start=False, url=",".join(f"mqtt://127.0.0.1:{p}" for p in ports))
    with pytest.raises(ConnectError) as caught:
        client.start(timeout=10)
    assert caught.value.reason == "unreachable"
    assert all(f"127.0.0.1:{port} is unreachable" in str(caught.value) for port in ports)
    assert str(caught.value).startswith("no broker answered: ")


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("publisher_delay", "label"), [
    (0.1, "mosquitto bridge, same backoff"),
    (1.0, "mosquitto bridge, publisher waits 1-2 s"),
])
def test_qos1_stream_fails_over_to_the_bridged_broker(
        tmp_path: Path, publisher_delay: float, label: str) -> None:
    first = Broker(tmp_path / "first").start()
    second = Broker(tmp_path / "second", extra=_bridge_to(first)).start()
    try:
        with FailoverRun(first.url, second.url, publisher_delay=publisher_delay) as run:
            run.wait_linked()
            run.start_clients()
            run.stream_until(KILL_AT)
            first.kill()
            run.finish(label)
    finally:
        second.stop()
        first.stop()
