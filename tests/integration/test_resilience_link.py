"""Fault injection, part 3: half-open links, crashed processes, health and heartbeat.

A loopback proxy black-holes the link to fake dead Wi-Fi; child processes are
SIGKILLed to fake a crash. Real mosquitto, every wait bounded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tars_mqtt import MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker
from tests.support import Inbox, wait_until
from tests.support.proxy import BlackHoleProxy

MakeClient = Callable[..., MQTTClient]
MakeConfig = Callable[..., MQTTConfig]


@pytest.fixture
def proxy(broker: Broker) -> Iterator[BlackHoleProxy]:
    p = BlackHoleProxy(broker.port).start()
    yield p
    p.stop()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_watchdog_drops_a_half_open_link_and_recovers(
        proxy: BlackHoleProxy, make_client: MakeClient) -> None:
    interval = 0.3  # the watchdog fires after ~3 silent intervals (+0.5 s)
    client = make_client(start=False, url=proxy.url, heartbeat_interval=interval, keepalive=60)
    probe, health = Inbox(), Inbox()
    client.subscribe("link/probe", probe, qos=1)
    client.subscribe(f"system/health/{client.config.client_id}", health, qos=1)
    client.start(timeout=10)
    other = make_client()  # connected straight to the broker, not through the proxy
    outbound = Inbox()
    other.subscribe("link/out", outbound, qos=1)
    other.publish("link/probe", "before", qos=1).wait(5)
    assert probe.wait_count(1, 5)

    proxy.blackhole()
    cut_at = time.monotonic()
    # Sent into the black hole: paho keeps it in flight and re-sends it after the reconnect.
    stranded = client.publish("link/out", "sent while half-open", qos=1)
    assert wait_until(lambda: not client.is_connected, 10), "the half-open link went unnoticed"
    noticed = time.monotonic() - cut_at
    before = proxy.connections()
    # Reconnect attempts hang too (TCP accepted, no CONNACK); the watchdog must cut them.
    assert wait_until(lambda: proxy.connections() >= before + 2, 20), \
        "a reconnect attempt stuck behind the black hole was never dropped"
    assert not client.is_connected
    assert not stranded.done

    proxy.pass_traffic()
    healed_at = time.monotonic()
    assert wait_until(lambda: client.stats().reconnects >= 1 and client.is_connected, 15), \
        "no recovery once the link carried traffic again"
    recovered = time.monotonic() - healed_at
    print(f"\nhalf-open link noticed after {noticed:.2f} s (threshold {3 * interval + 0.5:.1f} s);"
          f" {proxy.connections() - before} attempts while black-holed;"
          f" recovered {recovered:.2f} s after traffic resumed; health {health.events()}")
    assert noticed >= 2 * interval, "dropped the link before it was silent for long"
    assert noticed <= 3 * interval + 0.5 + 2 * interval + 3.0
    stranded.wait(10)
    assert outbound.wait_count(1, 10), "the QoS 1 message sent into the black hole was lost"
    other.publish("link/probe", "after", qos=1).wait(5)
    assert probe.wait_for(lambda msgs: msgs[-1].payload == b"after", 10), "not resubscribed"
    assert health.wait_event("reconnected", 5)
    # The broker fires the old link's will when the new one takes the session over; the
    # client's 'reconnected' follows it, so the retained state ends up right.
    assert _retained_health(make_client, client.config.client_id) == "reconnected"


_CHILD = """
import sys, threading
from tars_mqtt import MQTTClient, MQTTConfig
client = MQTTClient(MQTTConfig(url=sys.argv[1], client_id=sys.argv[2], heartbeat_interval=30))
if sys.argv[3] == "run_forever":
    print("started", flush=True)
    client.run_forever()         # starts after its SIGTERM handler is in: a clean stop
else:
    client.start(timeout=10)
    print("started", flush=True)
    threading.Event().wait(60)   # SIGKILL arrives long before this
"""


def _child(broker: Broker, client_id: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _CHILD, broker.url, client_id, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _retained_health(make_client: MakeClient, client_id: str) -> str:
    """What a service starting now would read on ``system/health/{client_id}``."""
    inbox = Inbox()
    make_client().subscribe(f"system/health/{client_id}", inbox, qos=1)
    assert inbox.wait_count(1, 5), "no retained health"
    assert inbox.messages[0].retain
    return inbox.events()[0]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigkilled_process_turns_offline_through_its_will(
        broker: Broker, make_client: MakeClient) -> None:
    child_id = "crashy-child"
    health = Inbox()
    make_client().subscribe(f"system/health/{child_id}", health, qos=1)
    child = _child(broker, child_id, "idle")
    try:
        assert health.wait_event("ready", 20), f"child never became ready: {child.stderr}"
        child.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert child.wait(10) == -signal.SIGKILL
        assert health.wait_event("offline", 10), f"no will after SIGKILL: {health.events()}"
        print(f"\nwill arrived {time.monotonic() - killed_at:.3f} s after SIGKILL;"
              f" health {health.events()}")
        offline = health.messages[health.events().index("offline")]
        assert offline.data["ok"] is False
        assert offline.envelope is not None and offline.envelope.source == child_id
        assert _retained_health(make_client, child_id) == "offline"
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def _no_offline_after(health: Inbox, make_client: MakeClient) -> None:
    """A round trip through the broker after the stop: a will would have come first."""
    probe = Inbox()
    observer = make_client()
    observer.subscribe("link/after-stop", probe, qos=1)
    observer.publish("link/after-stop", "probe", qos=1).wait(5)
    assert probe.wait_count(1, 5)
    assert "offline" not in health.events(), f"a clean stop fired the will: {health.events()}"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigterm_stops_cleanly_shutdown_never_offline(
        broker: Broker, make_client: MakeClient) -> None:
    child_id = "polite-child"
    health = Inbox()
    make_client().subscribe(f"system/health/{child_id}", health, qos=1)
    child = _child(broker, child_id, "run_forever")
    try:
        assert health.wait_event("ready", 20), "child never became ready"
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        child.send_signal(signal.SIGTERM)
        assert child.wait(10) == 0, child.communicate(timeout=5)[1][-2000:]
        assert health.wait_event("shutdown", 5), f"no shutdown health: {health.events()}"
        _no_offline_after(health, make_client)
        assert health.events() == ["ready", "shutdown"]
        assert _retained_health(make_client, child_id) == "shutdown"
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


@pytest.mark.timeout(30)
def test_in_process_stop_publishes_shutdown_never_offline(make_client: MakeClient) -> None:
    client = make_client()
    health = Inbox()
    make_client().subscribe(f"system/health/{client.config.client_id}", health, qos=1)
    assert health.wait_event("ready", 5)
    client.stop()
    assert health.wait_event("shutdown", 5)
    _no_offline_after(health, make_client)
    assert _retained_health(make_client, client.config.client_id) == "shutdown"


@pytest.mark.timeout(30)
def test_health_error_on_request_is_retained(make_client: MakeClient) -> None:
    client = make_client()
    client.publish_health(False, "error", "left leg servo stalled").wait(5)
    inbox = Inbox()
    make_client().subscribe(f"system/health/{client.config.client_id}", inbox, qos=1)
    assert inbox.wait_count(1, 5)
    assert inbox.messages[0].retain
    assert inbox.messages[0].data == {"ok": False, "event": "error",
                                      "error": "left leg servo stalled"}


@pytest.mark.timeout(30)
def test_heartbeat_carries_uptime_and_stats(make_client: MakeClient) -> None:
    client = make_client(heartbeat_interval=0.2)
    beats = Inbox()
    make_client().subscribe(f"system/keepalive/{client.config.client_id}", beats, qos=0)
    assert beats.wait_count(3, 10), "fewer than 3 heartbeats"
    first, third = beats.messages[0], beats.messages[2]
    assert not first.retain and first.qos == 0
    assert first.envelope is not None and first.envelope.type == "system.heartbeat"
    assert first.data["ok"] is True and first.data["event"] == "heartbeat"
    assert third.data["uptime"] > first.data["uptime"] > 0
    assert set(first.data["stats"]) >= {"published", "received", "reconnects", "duplicates",
                                        "offline_queued", "queue_depth"}
