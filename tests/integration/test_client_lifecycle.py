"""Start, stop, context manager and run_forever against a real mosquitto: a stop drains,
publishes ``shutdown`` health, disconnects and leaves no thread behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tars_mqtt import Message, MQTTClient, MQTTConfig, PublishError
from tars_mqtt.testing import Broker
from tests.tars_mqtt.support import WAIT, Collector, wait_until

MakeClient = Callable[..., MQTTClient]
MakeConfig = Callable[..., MQTTConfig]


def _health_events(got: Collector) -> list[str]:
    return [m.data["event"] for m in got.messages if isinstance(m.data, dict)]


def test_stop_drains_the_queue_then_joins_every_thread(make_client: MakeClient) -> None:
    before = set(threading.enumerate())
    client = make_client(workers=3)
    handled: list[int] = []
    lock = threading.Lock()

    def slowish(msg: Message) -> None:
        time.sleep(0.005)  # real work takes time; stop() must wait for it
        with lock:
            handled.append(msg.data["n"])

    client.subscribe("drain/t", slowish, qos=1)
    for n in range(40):
        client.publish_event("drain/t", "test.n", {"n": n}, qos=1)
    assert wait_until(lambda: client.stats().received == 40)  # all in our queue
    assert len(set(threading.enumerate()) - before) >= 5  # paho, timer, 3 workers
    client.stop(timeout=WAIT)
    assert handled == list(range(40))
    assert client.stats().queue_depth == 0
    assert not client.is_connected
    leftovers = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftovers == []


def test_health_ready_on_start_and_shutdown_on_stop(make_client: MakeClient) -> None:
    target = make_client(start=False)
    health_topic = f"system/health/{target.config.client_id}"
    watcher = make_client(enable_heartbeat=False)
    got = Collector()
    watcher.subscribe(health_topic, got, qos=1)
    target.start(WAIT)
    assert got.wait_for(1)
    target.stop(WAIT)
    assert got.wait_for(2)
    assert _health_events(got) == ["ready", "shutdown"]
    ready, shutdown = got.messages
    assert ready.data["ok"] is True and shutdown.data["ok"] is False
    assert ready.envelope is not None and ready.envelope.type == "system.health"

    late = make_client(enable_heartbeat=False, start=False)  # the retained value stays
    retained = Collector()
    late.subscribe(health_topic, retained, qos=1)
    late.start(WAIT)
    assert retained.wait_for(1)
    assert retained.messages[0].retain and _health_events(retained) == ["shutdown"]


def test_stop_is_idempotent_and_a_stopped_client_refuses_work(make_client: MakeClient) -> None:
    client = make_client()
    client.stop(WAIT)
    client.stop(WAIT)
    with pytest.raises(PublishError, match="is stopped: cannot publish to 'after/stop'"):
        client.publish("after/stop", b"x")
    assert client.liveness_problem() == "client is stopped"
    never_started = make_client(start=False)
    never_started.stop(WAIT)  # nothing to stop, no error


def test_context_manager(make_config: MakeConfig) -> None:
    before = set(threading.enumerate())
    got = Collector()
    with MQTTClient(make_config()) as client:
        assert client.is_connected
        client.subscribe("ctx/t", got, qos=1)
        client.publish("ctx/t", b"x", qos=1).wait(WAIT)
        assert got.wait_for(1)
    assert not client.is_connected
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []


def test_context_manager_stops_on_an_exception(make_config: MakeConfig) -> None:
    client = MQTTClient(make_config())
    with pytest.raises(RuntimeError, match="service bug"), client:
        assert client.is_connected
        raise RuntimeError("service bug")
    assert not client.is_connected


def test_stop_from_inside_a_handler(make_client: MakeClient) -> None:
    """Every method is safe from a handler, stop() included."""
    client = make_client(workers=2)
    stopped = threading.Event()

    def on_quit(msg: Message) -> None:
        client.stop(timeout=WAIT)
        stopped.set()

    client.subscribe("quit/now", on_quit, qos=1)
    client.publish("quit/now", b"bye", qos=1)
    assert stopped.wait(WAIT), "stop() from a handler never returned"
    assert not client.is_connected
    assert not (client.paho._thread and client.paho._thread.is_alive())


_SERVICE = """
import sys
from tars_mqtt import MQTTClient, MQTTConfig
client = MQTTClient(MQTTConfig(url=sys.argv[1], client_id=sys.argv[2]))
client.subscribe("svc/in", lambda msg: None, qos=1)
client.run_forever()
print("clean exit", flush=True)
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_forever_stops_cleanly_on_a_signal(
        broker: Broker, make_client: MakeClient, signum: signal.Signals) -> None:
    client_id = f"svc-{signum.name.lower()}"
    watcher = make_client(enable_heartbeat=False)
    got = Collector()
    watcher.subscribe(f"system/health/{client_id}", got, qos=1)
    proc = subprocess.Popen([sys.executable, "-c", _SERVICE, broker.url, client_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if not got.wait_for(1, timeout=20):
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the service never said ready; rc={proc.returncode}"
                        f" stdout={out!r} stderr={err.decode(errors='replace')}")
        assert _health_events(got) == ["ready"]
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"clean exit" in out
    assert got.wait_for(2)
    assert _health_events(got) == ["ready", "shutdown"]  # not the "offline" will


_SLOW_STARTER = """
import sys
from tars_mqtt import MQTTClient, MQTTConfig

class HeldStart(MQTTClient):
    def start(self, timeout=10.0):
        result = super().start(timeout)
        print("connected", flush=True)
        sys.stdin.readline()  # start() "still running" until the test says go
        return result

client = HeldStart(MQTTConfig(url=sys.argv[1], client_id=sys.argv[2]))
client.run_forever()
print("clean exit", flush=True)
"""


@pytest.mark.timeout(30)
def test_sigterm_while_run_forever_is_still_starting(broker: Broker,
                                                     make_client: MakeClient) -> None:
    """systemd may stop a service that is still connecting: that too is a clean stop."""
    client_id = "svc-early-term"
    watcher = make_client(enable_heartbeat=False)
    got = Collector()
    watcher.subscribe(f"system/health/{client_id}", got, qos=1)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_STARTER, broker.url, client_id],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == b"connected\n"
        proc.send_signal(signal.SIGTERM)  # start() has not returned yet
        out, err = proc.communicate(b"go\n", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"killed by the signal? rc={proc.returncode} {err!r}"
    assert b"clean exit" in out
    assert got.wait_for(2) and _health_events(got)[-1] == "shutdown"
