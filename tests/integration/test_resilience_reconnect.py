"""Fault injection, part 1: the broker goes away and comes back (settings, reconnect, health).

Each test restarts a real mosquitto on loopback; every wait is bounded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tars_mqtt import ConnectError, MQTTClient, MQTTConfig, PublishError
from tars_mqtt.testing import Broker
from tars_mqtt.timing import Backoff
from tests.support import ClientGroup, Inbox, wait_until

pytestmark = pytest.mark.slow

MakeConfig = Callable[..., MQTTConfig]
MakeClient = Callable[..., MQTTClient]


@pytest.mark.timeout(60)
def test_broker_killed_and_restarted_resubscribes_and_delivers(
        broker: Broker, make_config: MakeConfig, make_client: MakeClient) -> None:
    delay = 0.6  # fixed (min == max) so the measured reconnect time can be held to it
    config = make_config(heartbeat_interval=30.0)
    with ClientGroup() as group:
        client = group.add(MQTTClient(config, backoff=Backoff(delay, delay)))
        exact, wild, late, health = Inbox(), Inbox(), Inbox(), Inbox()
        client.subscribe("restart/exact", exact, qos=1)
        client.subscribe("restart/wild/#", wild, qos=0)
        client.subscribe(f"system/health/{config.client_id}", health, qos=1)
        client.start(timeout=10)
        assert health.wait_event("ready", 5)

        broker.kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: not client.is_connected, 5), "the lost link went unnoticed"
        # Subscribed while the broker is gone: only the client's own replay can carry it.
        client.subscribe("restart/late", late, qos=1)
        broker.start()
        assert wait_until(lambda: client.stats().reconnects == 1, 15), "never reconnected"
        took = time.monotonic() - killed_at
        print(f"reconnected {took:.3f} s after the broker died (backoff delay {delay} s)")
        assert took >= delay * 0.9, "retried sooner than the backoff allows"
        assert took <= 3 * delay + 3.0, "reconnect took far longer than the backoff"

        publisher = make_client()  # a fresh client: the message is sent after the restart
        for topic in ("restart/exact", "restart/wild/deep/er", "restart/late"):
            publisher.publish_event(topic, "test.after_restart", {"topic": topic}).wait(5)
        assert exact.wait_count(1, 5), "exact subscription not replayed"
        assert wild.wait_count(1, 5), "wildcard subscription not replayed"
        assert late.wait_count(1, 5), "subscription made while offline never reached the broker"
        assert health.wait_event("reconnected", 5), "no 'reconnected' health after the restart"
        assert health.events()[:2] == ["ready", "reconnected"]
        assert client.stats().reconnects == 1


@pytest.mark.timeout(60)
def test_twenty_qos1_publishes_while_broker_down_arrive_in_order(
        tmp_path: Path, make_config: MakeConfig) -> None:
    # The subscriber keeps a persistent session on a persistent broker, so whichever
    # client comes back first, the flushed messages wait for it in the broker.
    pbroker = Broker(tmp_path / "persistent", persistence=True).start()
    try:
        with ClientGroup() as group:
            inbox = Inbox()
            sub = group.add(MQTTClient(make_config(url=pbroker.url, clean_start=False,
                                                   session_expiry=120)))
            sub.subscribe("offline/seq", inbox, qos=1)
            sub.start(timeout=10)
            pub = group.add(MQTTClient(make_config(url=pbroker.url))).start(timeout=10)

            pbroker.stop()
            assert wait_until(lambda: not pub.is_connected and not sub.is_connected, 5)
            handles = [pub.publish_event("offline/seq", "test.seq", {"n": n}, qos=1)
                       for n in range(20)]
            assert pub.stats().offline_queued == 20
            assert not any(h.done for h in handles), "acked while the broker was down"

            pbroker.start()
            for handle in handles:
                handle.wait(15)  # returns only once the broker acknowledged it
            assert inbox.wait_count(20, 15), f"only {len(inbox.messages)} of 20 arrived"
            assert inbox.numbers() == list(range(20)), "out of order or duplicated"
            assert pub.stats().offline_queued == 0
            assert pub.stats().reconnects == 1
    finally:
        pbroker.stop()


@pytest.mark.timeout(30)
def test_full_offline_queue_refuses_loudly_and_keeps_what_it_took(
        broker: Broker, make_client: MakeClient) -> None:
    client = make_client(offline_queue=3)
    observer = Inbox()
    client.subscribe("offline/full", observer, qos=1)
    broker.kill()
    assert wait_until(lambda: not client.is_connected, 5)
    kept = [client.publish("offline/full", f"m{n}", qos=1) for n in range(3)]
    with pytest.raises(PublishError, match=r"offline queue is full \(3 messages\)"):
        client.publish("offline/full", "m3", qos=1)
    with pytest.raises(PublishError, match="offline queue is full"):
        client.publish("offline/full", "qos0 too", qos=0)
    assert client.stats().offline_queued == 3

    broker.start()
    for handle in kept:
        handle.wait(10)
    assert observer.wait_count(3, 10)
    assert [m.payload for m in observer.messages] == [b"m0", b"m1", b"m2"]


@pytest.mark.timeout(30)
def test_offline_queue_off_refuses_every_offline_publish(
        broker: Broker, make_client: MakeClient) -> None:
    client = make_client(offline_queue=0)
    broker.kill()
    assert wait_until(lambda: not client.is_connected, 5)
    with pytest.raises(PublishError, match=r"offline queue is off \(offline_queue=0\)"):
        client.publish("offline/none", "x", qos=1)
    assert client.stats().offline_queued == 0


def _password_file(path: Path, user: str, password: str) -> Path:
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"  # ships with mosquitto
    subprocess.run([tool, "-b", "-c", str(path), user, password], check=True,
                   capture_output=True)
    return path


def _refusals(broker: Broker) -> int:
    """Connection attempts the broker turned away for their credentials, from its log."""
    return len(re.findall(r"disconnected, not authori[sz]ed",
                          broker.log_path.read_text(errors="replace")))


@pytest.mark.timeout(30)
def test_bad_credentials_stop_the_retrying_with_a_clear_error(
        tmp_path: Path, make_config: MakeConfig) -> None:
    passwords = _password_file(tmp_path / "passwd", "robot", "right")
    auth = Broker(tmp_path / "auth", extra=f"password_file {passwords}").start()
    try:
        with ClientGroup() as group:
            # 1. Wrong from the start: start() says why, after one attempt only.
            wrong = group.add(MQTTClient(make_config(url=auth.url, username="robot",
                                                     password="wrong")))
            with pytest.raises(ConnectError) as refused:
                wrong.start(timeout=5)
            assert refused.value.reason in ("bad_credentials", "not_authorized")
            assert "refused" in str(refused.value) and "wrong" not in str(refused.value)
            assert wait_until(lambda: _refusals(auth) >= 1, 5)
            assert not wrong._transport.thread_alive()
            assert _refusals(auth) == 1

            # 2. The password changes under a running client: it stops instead of hammering.
            client = group.add(MQTTClient(make_config(url=auth.url, username="robot",
                                                      password="right"))).start(timeout=10)
            auth.stop()
            _password_file(passwords, "robot", "rotated")
            auth.start()
            assert wait_until(lambda: not client._transport.thread_alive(), 15), \
                "still retrying with credentials the broker refuses"
            problem = client.liveness_problem()
            print("liveness_problem:", problem)
            assert problem is not None and "Not authorized" in problem
            assert wait_until(lambda: _refusals(auth) >= 2, 5)
            assert _refusals(auth) == 2  # one refused attempt each, then silence
            with pytest.raises(ConnectError) as fatal:
                client.run_forever()  # a service's main loop exits with the reason
            assert fatal.value.reason in ("bad_credentials", "not_authorized")
    finally:
        auth.stop()


@pytest.mark.timeout(60)
def test_twenty_clients_losing_the_broker_together_come_back_spread_out(
        broker: Broker, make_config: MakeConfig) -> None:
    low, high = 0.2, 2.0
    with ClientGroup() as group:
        clients = [group.add(MQTTClient(make_config(
            reconnect_min_delay=low, reconnect_max_delay=high, workers=1,
            enable_heartbeat=False))) for _ in range(20)]
        for client in clients:
            client.start(timeout=10)

        broker.kill()
        down_at = time.monotonic()
        assert wait_until(lambda: not any(c.is_connected for c in clients), 5)
        # The outage itself: long enough for three failed attempts each (delays up to
        # 0.2, 0.4, 0.8 s), so their ceilings have grown apart.
        assert wait_until(lambda: all(c.stats().failed_connects >= 3 for c in clients), 15)
        broker.start()
        up_at = time.monotonic()

        back: dict[int, float] = {}

        def all_back() -> bool:
            for i, client in enumerate(clients):
                if i not in back and client.stats().reconnects >= 1:
                    back[i] = time.monotonic()
            return len(back) == len(clients)

        assert wait_until(all_back, 20), f"only {len(back)} of 20 clients reconnected"
        times = sorted(t - up_at for t in back.values())
        span = times[-1] - times[0]
        busiest = max(sum(t <= u < t + 0.1 for u in times) for t in times)
        print(f"broker down {up_at - down_at:.2f} s; reconnects after it returned:"
              f" first {times[0]:.3f} s, last {times[-1]:.3f} s, span {span:.3f} s,"
              f" at most {busiest} of 20 within any 100 ms")
        assert all(c.is_connected for c in clients)
        assert times[-1] <= high + 3.0, "a client waited longer than the maximum backoff"
        assert span >= 0.3, "clients reconnected in one burst: no jitter"
        assert busiest <= 15, "most clients reconnected in the same 100 ms"
