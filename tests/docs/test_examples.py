"""The extension examples (docs/extending.md) run, and do what they say, against mosquitto."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from services.topics import MOVEMENT_COMMAND, check_payload
from tars_mqtt import ClientStats, Message, MQTTClient, PublishError
from tars_mqtt.testing import Broker, ManualClock

from .support import REAL_IDS, ROOT, RobotWatch, run_program

MakeClient = Callable[..., MQTTClient]

OUTPUTS = {
    "batching_publisher": "3 messages carried 120 readings: sizes [50, 50, 20], in order: True\n",
    "guarded_publish": "rate limiter: sent sent sent sent sent limited limited limited"
                       " | after 1 s: sent\n"
                       "circuit breaker: failed failed failed fast-fail fast-fail open half_open\n",
    "typed_handlers": "movement got MovementCommand(action='wave', speed=1.5, params=None)\n"
                      "router got MovementStatus(event='completed', action='wave', error=None)\n"
                      "movement rejected 2 commands\n",
    "stats_exporter": "True ['example-exporter', 'example-worker']\n"
                      "the worker published at least 3: True\n",
}


def load(name: str) -> Any:
    """Import examples/<name>.py as a module (examples/ is no package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and type hints look their module up
    spec.loader.exec_module(module)
    return module


class Inbox:
    """Messages on one filter, and a wait for the n-th one."""

    def __init__(self, client: MQTTClient, topic_filter: str) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        client.subscribe(topic_filter, self._on, qos=1)

    def _on(self, msg: Message) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[Message]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.messages) >= count, timeout), \
                f"{len(self.messages)} of {count} messages within {timeout} s"
            return list(self.messages)


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition the code offers no event for (the link going up or down)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def run_watched(name: str, broker: Broker) -> str:
    """Run examples/<name>.py; its stdout, once it exited 0 and harmed no robot."""
    robot = RobotWatch(broker)
    try:
        out = run_program(ROOT / "examples" / f"{name}.py", broker)
        problems = robot.problems()
    finally:
        robot.stop()
    assert out.returncode == 0, out.stderr
    assert not problems, f"examples/{name}.py is not safe next to a running robot: {problems}"
    return out.stdout


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_example_main_runs(name: str, broker: Broker) -> None:
    assert run_watched(name, broker) == OUTPUTS[name]


@pytest.mark.parametrize("name", ["request_reply", "async_service"])
def test_colleague_example_is_safe_next_to_a_robot(name: str, broker: Broker) -> None:
    run_watched(name, broker)  # what it prints is checked by tests/integration


def test_every_example_has_its_own_client_ids() -> None:
    for path in sorted((ROOT / "examples").glob("*.py")):
        ids = re.findall(r"""client_id\s*=\s*["']([^"']+)["']""", path.read_text())
        assert ids, f"{path.name}: names no client id"
        assert not set(ids) & REAL_IDS, f"{path.name} takes a real service's id: {ids}"


def test_every_new_example_is_run_here() -> None:
    colleagues = {"request_reply", "async_service"}  # run by tests/integration
    present = {p.stem for p in (ROOT / "examples").glob("*.py")}
    assert present - colleagues == set(OUTPUTS)


# batching ---------------------------------------------------------------------------
def test_batch_goes_out_after_max_delay_without_a_flush(make_client: MakeClient) -> None:
    batching = load("batching_publisher")
    sink, source = make_client(), make_client()
    inbox = Inbox(sink, "b/t")
    batcher = batching.BatchingPublisher(source, "b/t", "b.batch", max_items=100,
                                         max_delay=0.2)
    try:
        for n in range(3):
            batcher.add({"n": n})
        [msg] = inbox.wait(1)  # nobody flushed: the timer did
        assert msg.type == "b.batch" and msg.data["count"] == 3
        assert batching.items_of(msg) == [{"n": 0}, {"n": 1}, {"n": 2}]
    finally:
        batcher.close()
    assert not batcher._timer.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.add({"n": 9})


def test_full_batch_returns_its_handle(make_client: MakeClient) -> None:
    batching = load("batching_publisher")
    source = make_client()
    with batching.BatchingPublisher(source, "b/full", "b.batch", max_items=2,
                                    max_delay=60) as batcher:
        assert batcher.add({"n": 1}) is None
        handle = batcher.add({"n": 2})
        handle.wait(5)
        assert batcher.flush() is None  # nothing waiting
    assert batching.items_of(Message(topic="x", payload=b"", data=[1])) == []


# rate limit and circuit breaker ------------------------------------------------------
def test_rate_limiter_refills_with_the_clock() -> None:
    guarded = load("guarded_publish")
    clock = ManualClock()
    limiter = guarded.RateLimiter(rate=2, burst=2, clock=clock.now)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)
    assert [limiter.try_acquire() for _ in range(2)] == [True, False]
    clock.advance(100)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]


def test_breaker_opens_on_a_broker_outage_and_closes_after_it(broker: Broker,
                                                               make_client: MakeClient) -> None:
    guarded = load("guarded_publish")
    clock = ManualClock()
    client = make_client(offline_queue=0)
    breaker = guarded.CircuitBreaker(failures=2, reset_after=5.0, clock=clock.now)
    publisher = guarded.GuardedPublisher(client, breaker=breaker)
    publisher.publish_event("g/t", "g.t", {"n": 0}).wait(5)
    until(lambda: breaker.state == "closed")

    broker.stop()
    until(lambda: not client.is_connected)
    for _ in range(2):
        with pytest.raises(PublishError, match="offline queue is off"):
            publisher.publish_event("g/t", "g.t", {})
    assert breaker.state == "open"
    with pytest.raises(guarded.CircuitOpen):
        publisher.publish_event("g/t", "g.t", {})
    clock.advance(5.0)
    assert breaker.state == "half_open"
    with pytest.raises(PublishError, match="offline queue is off"):  # the trial fails
        publisher.publish_event("g/t", "g.t", {})
    assert breaker.state == "open"

    broker.start()
    until(lambda: client.is_connected)
    clock.advance(5.0)
    handle = publisher.publish_event("g/t", "g.t", {"n": 1})  # the trial succeeds
    with pytest.raises(guarded.CircuitOpen):  # one trial at a time
        publisher.publish_event("g/t", "g.t", {})
    handle.wait(5)
    until(lambda: breaker.state == "closed")
    publisher.publish_event("g/t", "g.t", {"n": 2}).wait(5)


def test_rate_limited_is_a_publish_error_and_frees_the_trial() -> None:
    guarded = load("guarded_publish")
    assert issubclass(guarded.RateLimited, PublishError)
    assert issubclass(guarded.CircuitOpen, PublishError)
    clock = ManualClock()
    breaker = guarded.CircuitBreaker(failures=1, reset_after=1.0, clock=clock.now)
    breaker.record_failure()
    clock.advance(1.0)
    assert breaker.allow() and not breaker.allow()  # one half-open trial
    breaker.release()
    assert breaker.allow()


# typed handlers ----------------------------------------------------------------------
def test_typed_handler_gets_models_and_rejects_the_rest(make_client: MakeClient) -> None:
    typed = load("typed_handlers")
    movement, router = make_client(), make_client()
    topics = typed.TypedTopics(movement, typed.ROUTES)
    got: list[Any] = []
    arrived = threading.Event()

    @topics.handler("example/movement/command", typed.MovementCommand)  # type: ignore[untyped-decorator]
    def on_command(cmd: Any, msg: Message) -> None:
        got.append(cmd)
        arrived.set()

    for bad in (b"not json", b'{"action": "wave"}'):
        router.publish("example/movement/command", bad, qos=1).wait(5)
    router.publish_event("example/movement/command", "movement.other", {"action": "wave"}).wait(5)
    router.publish_event("example/movement/command", "movement.command",
                         {"action": "wave", "params": "high"}).wait(5)
    router.publish_event("example/movement/command", "movement.command",
                         {"action": 3}).wait(5)
    typed.TypedTopics(router, typed.ROUTES).publish(
        "example/movement/command", typed.MovementCommand("bow", speed=2)).wait(5)
    assert arrived.wait(10)
    assert got == [typed.MovementCommand("bow", speed=2.0)]
    assert topics.rejected == 5
    assert movement.stats().handler_errors == 0


def test_typed_publish_fits_the_robots_movement_command(make_client: MakeClient) -> None:
    """What the example sends is what the real movement service accepts: no null params."""
    typed = load("typed_handlers")
    watcher, sender = make_client(), make_client()
    inbox = Inbox(watcher, "example/movement/command")
    topics = typed.TypedTopics(sender, typed.ROUTES)
    topics.publish("example/movement/command", typed.MovementCommand("wave", speed=1.5)).wait(5)
    topics.publish("example/movement/command",
                   typed.MovementCommand("point", params={"side": "left"})).wait(5)
    first, second = inbox.wait(2)
    assert first.data == {"action": "wave", "speed": 1.5}
    assert second.data == {"action": "point", "speed": 1.0, "params": {"side": "left"}}
    for msg in (first, second):
        assert check_payload(MOVEMENT_COMMAND, msg.data) == []


def test_typed_topics_refuse_the_wrong_model(make_client: MakeClient) -> None:
    typed = load("typed_handlers")
    topics = typed.TypedTopics(make_client(start=False), typed.ROUTES)
    with pytest.raises(TypeError, match="carries MovementCommand"):
        topics.publish("example/movement/command", typed.MovementStatus("completed", "wave"))
    with pytest.raises(TypeError, match="carries MovementStatus"):
        topics.handler("example/movement/status", typed.MovementCommand)


# stats exporter ----------------------------------------------------------------------
_SAMPLE = re.compile(r'^tars_mqtt_\w+\{client="[^"\\]*"(,\w+="[^"\\]*")?\} -?[0-9.e+-]+$')


def test_exporter_serves_prometheus_text_for_the_fleet(make_client: MakeClient) -> None:
    exporting = load("stats_exporter")
    client = make_client()
    worker = make_client(heartbeat_interval=0.1)
    exporter = exporting.StatsExporter(client)
    try:
        for n in range(4):
            worker.publish("w/x", b"%d" % n, qos=1).wait(5)
        assert exporter.wait_for(worker.config.client_id, 10, "published", at_least=4)
        with urllib.request.urlopen(exporter.url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(exporter.url.replace("/metrics", "/other"), timeout=5)
    finally:
        exporter.close()
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples and all(_SAMPLE.match(line) for line in samples), text
    for field in ClientStats.__dataclass_fields__:
        name = exporting._metric(field)[0]
        for cid in (client.config.client_id, worker.config.client_id):
            labels = f',broker="{client.config.url}"' if field in exporting.INFO else ""
            assert f'{name}{{client="{cid}"{labels}}}' in text, (name, cid)
    assert '# TYPE tars_mqtt_published_total counter' in text
    assert '# TYPE tars_mqtt_queue_depth gauge' in text


def test_render_escapes_label_values() -> None:
    exporting = load("stats_exporter")
    text = exporting.render({'we"ird\\id': {"published": 1}}, {})
    assert 'tars_mqtt_published_total{client="we\\"ird\\\\id"} 1' in text
