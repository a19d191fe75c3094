"""A service under a test-owned NOTIFY_SOCKET, as systemd runs it, against a real mosquitto.

The real services are built on :func:`services.runtime.serve`; here a small stand-in
runs in a subprocess (``SERVICE``) with a handler the test can wedge by publishing to
``test/wedge``. The test plays systemd: it owns the notify socket and sends SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.runtime import serve
from services.sdnotify import Notifier
from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker
from tests.services.test_sdnotify import NotifyListener

REPO = Path(__file__).resolve().parents[2]
CLIENT_ID = "notify-svc"

# A service as the colleagues write them: a client, a handler, then serve().
SERVICE = """
import logging, sys, threading
from tars_mqtt import MQTTClient
from services.runtime import serve

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
client = MQTTClient.from_env(client_id="notify-svc")
release = threading.Event()

@client.subscribe("test/wedge", qos=1)
def wedge(msg):
    release.wait(30)  # stuck, as a handler waiting on dead hardware would be

sys.exit(serve(client))
"""


class Service:
    """The stand-in service in a subprocess, with its log kept for failure messages."""

    def __init__(self, broker: Broker, listener: NotifyListener, log: Path) -> None:
        env = {**os.environ, "MQTT_URL": broker.url, "NOTIFY_SOCKET": listener.address,
               "WATCHDOG_USEC": "400000", "TARS_HANDLER_LIMIT": "1",
               "MQTT_RECONNECT_MIN_DELAY": "0.1", "MQTT_RECONNECT_MAX_DELAY": "0.5",
               "PYTHONPATH": str(REPO)}
        self.log_path = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVICE], env=env, cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    sock = NotifyListener()
    yield sock
    sock.close()


@pytest.fixture
def start_service(broker: Broker, listener: NotifyListener,
                  tmp_path: Path) -> Iterator[Callable[[], Service]]:
    services: list[Service] = []

    def start() -> Service:
        services.append(Service(broker, listener, tmp_path / f"service{len(services)}.log"))
        return services[-1]

    yield start
    for service in services:
        service.close()


def _ready(listener: NotifyListener, service: Service) -> None:
    try:
        ready = listener.expect(lambda m: m.get("READY") == "1", "READY=1", timeout=20)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nservice log:\n{service.log()}") from None
    assert f"as {CLIENT_ID}" in ready.get("STATUS", "")


def test_ready_pings_outage_wedge_and_stop(broker: Broker, listener: NotifyListener,
                                          start_service: Callable[[], Service],
                                          make_client: Callable[..., MQTTClient]) -> None:
    service = start_service()
    _ready(listener, service)
    listener.expect_pings(3)

    broker.stop()  # the broker is down: the service is not wedged, it reconnects
    listener.expect_pings(5)
    broker.start()

    # Wait for the service to be back (its retained health says so), then wedge it.
    observer = make_client()
    back = threading.Event()

    def on_health(msg: Message) -> None:
        if isinstance(msg.data, dict) and msg.data.get("event") == "reconnected":
            back.set()

    observer.subscribe(f"system/health/{CLIENT_ID}", on_health, qos=1)
    assert back.wait(20), f"the service did not reconnect; its log:\n{service.log()}"
    observer.publish_event("test/wedge", "test.wedge", {}).wait(5)

    wedged = listener.expect(lambda m: "STATUS" in m, "STATUS=wedged")
    assert wedged["STATUS"].startswith("wedged:") and "in one handler" in wedged["STATUS"]
    for _ in range(5):  # 5 watchdog intervals of silence (0.2 s each)
        message = listener.receive(0.2)
        assert message is None or message.get("WATCHDOG") != "1", "pinged while wedged"
    assert "watchdog pings stop" in service.log()

    service.proc.send_signal(signal.SIGTERM)
    listener.expect(lambda m: m.get("STOPPING") == "1", "STOPPING=1 after SIGTERM")


def test_sigterm_stops_cleanly_with_exit_code_0(broker: Broker, listener: NotifyListener,
                                                start_service: Callable[[], Service]) -> None:
    service = start_service()
    _ready(listener, service)
    service.proc.send_signal(signal.SIGTERM)
    listener.expect(lambda m: m.get("STOPPING") == "1", "STOPPING=1 after SIGTERM")
    assert service.proc.wait(20) == 0, service.log()
    assert not any(m.get("WATCHDOG") for m in listener.seen[listener.seen.index(
        {"STOPPING": "1"}):]), "pinged after STOPPING=1"


def test_a_broker_that_is_down_at_boot_is_waited_for(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "late-broker")  # not started yet
    listener = NotifyListener(abstract=True)
    client = MQTTClient(MQTTConfig(url=broker.url, client_id="late", reconnect_min_delay=0.1,
                                   reconnect_max_delay=0.5))
    stop = threading.Event()
    result: list[int] = []
    notifier = Notifier(environ={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "400000"})
    thread = threading.Thread(target=lambda: result.append(
        serve(client, notifier=notifier, stop=stop)))
    thread.start()
    try:
        waiting = listener.expect(lambda m: "STATUS" in m, "STATUS=waiting for the broker")
        assert "waiting for the broker" in waiting["STATUS"]
        assert not client.is_connected
        broker.start()
        listener.expect(lambda m: m.get("READY") == "1", "READY=1 once the broker is up")
        listener.expect_pings(2)
        stop.set()
        thread.join(20)
        assert result == [0]
        listener.expect(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
    finally:
        stop.set()
        thread.join(20)
        broker.stop()
        listener.close()
