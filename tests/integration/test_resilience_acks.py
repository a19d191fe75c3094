"""Acknowledge after handling: a stall, a crash, a stop or a link drop costs no acked message.

QoS 1/2 deliveries are acknowledged to the broker only once the handler returned. So the
broker keeps what the client has not handled yet, holds back what it has no room for
(the receive window), and sends it all again to a persistent session after a crash.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker
from tests.support import ClientGroup, Inbox
from tests.tars_mqtt.support import WAIT, Collector, wait_until

MakeClient = Callable[..., MQTTClient]
MakeConfig = Callable[..., MQTTConfig]


class Numbered:
    """A handler that holds the first message until ``gate`` opens and records every ``n``."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.seen: list[int] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Message) -> None:
        self.entered.set()
        if not self.gate.wait(30):
            raise AssertionError("the test never opened the gate")
        with self._cond:
            self.seen.append(int(msg.data["n"]))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(set(self.seen)) >= count, timeout)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_stall_longer_than_the_watchdog_loses_no_acked_message(
        make_client: MakeClient) -> None:
    """One handler call outlasts the half-open watchdog by far while 100 QoS 1 messages
    queue behind it. The network thread keeps reading (heartbeats come back), so the link
    is never dropped, and every message the broker acked is handled, in order."""
    interval, total = 0.3, 101
    threshold = 3 * interval + 0.5
    client = make_client(heartbeat_interval=interval, queue_size=10, workers=1)
    handler = Numbered()
    client.subscribe("stall/t", handler, qos=1)
    beats = Inbox()
    make_client().subscribe(f"system/keepalive/{client.config.client_id}", beats, qos=0)
    publisher = make_client()
    publisher.publish_event("stall/t", "t.n", {"n": 0}).wait(WAIT)
    assert handler.entered.wait(WAIT)
    stalled_at = time.monotonic()
    for handle in [publisher.publish_event("stall/t", "t.n", {"n": n}) for n in range(1, total)]:
        handle.wait(WAIT)  # acked by the broker: from here on, "lost" means never handled
    # The stall lasts until the client has heartbeated through 2.5 watchdog thresholds.
    start = len(beats.messages)
    wanted = start + int(2.5 * threshold / interval) + 1
    assert beats.wait_count(wanted, 30), "heartbeats stopped during the stall"
    during = client.stats()
    stall = time.monotonic() - stalled_at
    assert client.is_connected and during.reconnects == 0, "the watchdog dropped a live link"
    assert during.received <= client.config.receive_window  # the broker held the rest back
    handler.gate.set()
    assert handler.wait_for(total), f"only {len(set(handler.seen))} of {total} handled"
    after = client.stats()
    lost = sorted(set(range(total)) - set(handler.seen))
    print(f"\nstall {stall:.2f} s against a watchdog threshold of {threshold:.1f} s;"
          f" {wanted - start} heartbeats meanwhile; received during the stall"
          f" {during.received} (window {client.config.receive_window}); {total} acked by the"
          f" broker, {len(set(handler.seen))} handled, {len(lost)} lost,"
          f" {len(handler.seen) - len(set(handler.seen))} twice; reconnects {after.reconnects};"
          f" dropped {after.dropped}")
    assert lost == [] and after.reconnects == 0 and after.dropped == 0
    assert handler.seen == list(range(total))


_CHILD = """
import sys, threading
from tars_mqtt import MQTTClient, MQTTConfig
config = MQTTConfig(url=sys.argv[1], client_id=sys.argv[2], session_expiry=300,
                    heartbeat_interval=30)
client = MQTTClient(config)
stall = sys.argv[3] == "stall"
lock = threading.Lock()
def say(line):  # whole lines: the worker and the main thread both speak
    with lock:
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()
def on_job(msg):
    say(("stalled on " if stall else "handled ") + str(msg.data["n"]))
    if stall:
        threading.Event().wait(60)  # SIGKILL arrives long before this
client.subscribe("crash/jobs", on_job, qos=1)
client.start(timeout=10)
say("ready")
threading.Event().wait(60)
"""


def _child(broker: Broker, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _CHILD, broker.url, "crash-worker", mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    return child.stdout.readline().strip()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_crash_inside_the_handler_means_redelivery_not_loss(
        broker: Broker, make_client: MakeClient) -> None:
    """SIGKILL while the handler runs: the broker never got the ack, so the restarted
    process (same id, persistent session) gets the message again."""
    first = _child(broker, "stall")
    second: subprocess.Popen[str] | None = None
    try:
        assert _line(first) == "ready", first.stderr
        make_client().publish_event("crash/jobs", "t.job", {"n": 7}).wait(WAIT)
        assert _line(first) == "stalled on 7"
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        second = _child(broker, "handle")
        # The resumed session may deliver it before start() has returned.
        lines = {_line(second), _line(second)}
        assert lines == {"ready", "handled 7"}, f"the interrupted message was lost: {lines}"
    finally:
        for child in (first, second):
            if child is not None:
                if child.poll() is None:
                    child.kill()
                child.communicate(timeout=10)


@pytest.mark.timeout(30)
def test_stop_leaves_what_it_did_not_handle_to_the_broker(
        make_config: MakeConfig, make_client: MakeClient) -> None:
    """``stop()`` drains for its timeout; what is still waiting then is not acknowledged,
    and the next process on the session handles it."""
    config = make_config(session_expiry=60, workers=1)
    publisher = make_client()
    with ClientGroup() as group:
        first = group.add(MQTTClient(config))
        handler = Numbered()
        first.subscribe("drain/t", handler, qos=1)
        first.start(timeout=10)
        for n in range(5):
            publisher.publish_event("drain/t", "t.n", {"n": n}).wait(WAIT)
        assert handler.entered.wait(WAIT)
        assert wait_until(lambda: first.stats().received == 5)
        first.stop(0.3)  # gives up on the stuck handler, disconnects
        handler.gate.set()  # 0 finishes after the link is gone: never acknowledged either
        assert wait_until(lambda: first.stats().dropped == 4)  # 1..4: never started
        again = Collector()
        second = group.add(MQTTClient(config))
        second.subscribe("drain/t", again, qos=1)
        second.start(timeout=10)
        assert again.wait_for(5), f"got {[m.data for m in again.messages]}"
        assert sorted(m.data["n"] for m in again.messages) == [0, 1, 2, 3, 4]


@pytest.mark.timeout(30)
def test_messages_dropped_by_the_policy_are_acked_so_the_window_keeps_moving(
        make_client: MakeClient) -> None:
    """Under a drop policy a dropped QoS 1 message is acknowledged (and counted): with a
    receive window of 5, withheld acks would stop the broker after five messages."""
    client = make_client(queue_size=2, queue_policy="drop_newest", receive_maximum=5,
                         workers=1)
    handler = Numbered()
    client.subscribe("drops/t", handler, qos=1)
    publisher = make_client()
    publisher.publish_event("drops/t", "t.n", {"n": 0}).wait(WAIT)
    assert handler.entered.wait(WAIT)
    for n in range(1, 31):
        publisher.publish_event("drops/t", "t.n", {"n": n}).wait(WAIT)
    assert wait_until(lambda: client.stats().received == 31), client.stats()
    handler.gate.set()
    assert handler.wait_for(2)
    assert client.stats().dropped == 29
    publisher.publish_event("drops/t", "t.n", {"n": 99}).wait(WAIT)
    assert handler.wait_for(3) and handler.seen == [0, 1, 99]


@pytest.mark.timeout(30)
def test_qos2_handled_across_a_link_drop_is_completed_once(make_client: MakeClient) -> None:
    """The link drops while a QoS 2 handler runs. The broker sends PUBREL again on the new
    link; it is answered once the handler is done, so the broker's window (here 1) frees
    and the next message comes; the interrupted one is handled exactly once."""
    client = make_client(session_expiry=60, receive_maximum=1, workers=1)
    handler = Numbered()
    client.subscribe("q2/t", handler, qos=2)
    publisher = make_client()
    publisher.publish_event("q2/t", "t.n", {"n": 1}, qos=2).wait(WAIT)
    assert handler.entered.wait(WAIT)
    client.paho.socket().close()  # the link dies under the handler
    assert wait_until(lambda: client.stats().reconnects == 1 and client.is_connected)
    publisher.publish_event("q2/t", "t.n", {"n": 2}, qos=2).wait(WAIT)
    handler.gate.set()
    assert handler.wait_for(2), f"window never freed: handled {handler.seen}"
    assert handler.seen == [1, 2]
