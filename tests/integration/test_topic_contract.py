"""The three services keep to the robot's topic table (services/topics.py, docs/topics.md).

The services run as processes on mock pins through a scripted exchange that makes them use
every topic they have. What they put on the wire is read from mosquitto's own debug log
(every SUBSCRIBE with its QoS, every PUBLISH with its QoS and retain flag, the will), so
nothing about the services is mocked; a recorder subscribed to ``#`` checks the payloads.
System topics (health, heartbeat, request replies) are outside the table and allowed
explicitly. The broker ACL template is checked against the same table.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services import topics as t
from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker

from .support import Recorder

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "services" / "deploy" / "tars.acl"
SERVICES = ("movement", "wake", "router")
TIMEOUT = 15.0
HEALTH_EVENTS = {"ready", "reconnected", "shutdown", "error", "offline"}
# What the scripted exchange must make each service do (so the checks cannot pass vacuously).
MUST_PUBLISH = {
    "movement": {"movement/status"},
    "wake": {"wake/event"},
    "router": {"system/state", "movement/command", "movement/stop", "tts/say", "tts/control",
               "llm/request"},
}
MUST_SUBSCRIBE = {
    "movement": {"movement/command", "movement/stop"},
    "wake": {"system/state", "wake/simulate"},
    "router": {"wake/event", "stt/final", "tts/status"},
}


# The broker's view ---------------------------------------------------------------------
@dataclass(frozen=True)
class Wire:
    """One thing a client did, as mosquitto logged it."""

    client: str
    kind: str  # publish | subscribe | will
    topic: str
    qos: int
    retain: bool = False


_PUBLISH = re.compile(r"Received PUBLISH from (\S+) \(d\d, q(\d), r(\d), m\d+, '(.*)', \.\.\. "
                      r"\(\d+ bytes\)\)$")
_SUBSCRIBE = re.compile(r"Received SUBSCRIBE from (\S+)$")
_FILTER = re.compile(r"^\t(.*) \(QoS (\d)\)$")
_CONNECTED = re.compile(r"New client connected from \S+ as (\S+) \(")
_WILL = re.compile(r"Will message specified \(\d+ bytes\) \(r(\d), q(\d)\)\.$")


def wire_log(log: str) -> list[Wire]:
    """Publishes, subscriptions and wills from mosquitto's ``log_type all`` output."""
    found: list[Wire] = []
    subscriber = connected = None
    will: tuple[bool, int] | None = None
    for raw in log.splitlines():
        line = raw.split(": ", 1)[1] if re.match(r"^\d+: ", raw) else raw
        if m := _PUBLISH.search(line):
            found.append(Wire(m[1], "publish", m[4], int(m[2]), m[3] == "1"))
        elif m := _CONNECTED.search(line):
            connected, subscriber = m[1], None
        elif (m := _WILL.search(line)) and connected:
            will = (m[1] == "1", int(m[2]))
        elif (m := _FILTER.match(line)) and subscriber:
            found.append(Wire(subscriber, "subscribe", m[1], int(m[2])))
        elif line.startswith("\t") and will is not None and connected:
            found.append(Wire(connected, "will", line[1:], will[1], will[0]))
            will = None
        elif m := _SUBSCRIBE.search(line):
            subscriber = m[1]
        elif not line.startswith("\t"):
            subscriber = None
    return found


def system_topic_ok(service: str, item: Wire) -> bool | None:
    """True/False for a system topic (allowed with these flags or not), None otherwise."""
    topic = item.topic
    if not topic.startswith("system/") or topic == t.SYSTEM_STATE.name:
        return None
    own = {
        ("publish", f"system/health/{service}"): (1, True),
        ("will", f"system/health/{service}"): (1, True),
        ("publish", f"system/keepalive/{service}"): (0, False),
        ("subscribe", f"system/keepalive/{service}"): (1, False),  # the watchdog reads it back
        ("subscribe", f"system/reply/{service}"): (1, False),
    }
    flags = own.get((item.kind, topic))
    if flags is None and item.kind == "publish" and topic.startswith("system/reply/"):
        flags = (1, False)  # answering someone else's request
    return flags == (item.qos, item.retain)


# Processes and clients -----------------------------------------------------------------
class Services:
    """The three services as processes against ``broker``, logs in ``log_dir``."""

    def __init__(self, broker: Broker, log_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "TARS_"))}
        env.update(MQTT_URL=broker.url, MQTT_HEARTBEAT_INTERVAL="0.5",
                   GPIOZERO_PIN_FACTORY="mock", TARS_WAKE_SIMULATE="1",
                   TARS_WAKE_HOLD_TIME="0.3", TARS_ROUTER_LLM_TIMEOUT="5")
        self.logs = {name: log_dir / f"{name}.log" for name in SERVICES}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name in SERVICES:
            with open(self.logs[name], "wb") as out:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env,
                    stdout=out, stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def terminate(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(TIMEOUT)
        return codes

    def kill(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(TIMEOUT)


def stub(broker: Broker, client_id: str) -> MQTTClient:
    return MQTTClient(MQTTConfig(url=broker.url, client_id=client_id, enable_health=False,
                                 enable_heartbeat=False))


@pytest.fixture(scope="module")
def logged_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A mosquitto that logs every packet (``log_type all``) to its log file."""
    b = Broker(tmp_path_factory.mktemp("contract") / "broker", extra="log_type all").start()
    yield b
    b.stop()


@dataclass
class Exchange:
    wire: list[Wire]
    messages: list[Message]


@pytest.fixture(scope="module")
def exchange(logged_broker: Broker, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Exchange]:
    """Run the scripted exchange once (for the module); what the broker and recorder saw."""
    broker = logged_broker
    tmp_path = tmp_path_factory.mktemp("services")
    tools, speech, llm = stub(broker, "tools"), stub(broker, "speech"), stub(broker, "llm")
    rec = Recorder(tools)

    @speech.subscribe(t.TTS_SAY.name, qos=t.TTS_SAY.qos)
    def on_say(msg: Message) -> None:  # the speech service: speak at once, finish at once
        utt = {"utt_id": msg.data["utt_id"]} if "utt_id" in msg.data else {}
        for event in ("speaking_start", "speaking_end"):
            speech.publish_event(t.TTS_STATUS.name, t.TTS_STATUS.event_type,
                                 {"event": event, **utt}, qos=t.TTS_STATUS.qos)

    @llm.subscribe(t.LLM_REQUEST.name, qos=t.LLM_REQUEST.qos)
    def on_ask(msg: Message) -> None:
        llm.reply(msg, t.LLM_RESPONSE.event_type, {"reply": "It is sunny."})

    def hear(text: str) -> None:
        speech.publish_event(t.STT_FINAL.name, t.STT_FINAL.event_type, {"text": text},
                             qos=t.STT_FINAL.qos).wait(5)

    def press(action: str) -> None:
        tools.publish_event(t.WAKE_SIMULATE.name, t.WAKE_SIMULATE.event_type,
                            {"action": action}, qos=t.WAKE_SIMULATE.qos).wait(5)

    with tools, speech, llm:
        services = Services(broker, tmp_path)
        try:
            for name in SERVICES:
                try:
                    rec.wait(f"system/health/{name}", TIMEOUT, sender=name, event="ready")
                except AssertionError:
                    raise AssertionError(f"{name} never got ready:\n{services.log(name)}") \
                        from None
            press("press")
            rec.wait("wake/event", TIMEOUT, sender="wake", type="wake")
            rec.wait("system/state", TIMEOUT, sender="router", state="listening")
            hear("please wave")
            rec.wait("movement/status", TIMEOUT, sender="movement", event="completed",
                     action="wave")
            rec.wait("tts/say", TIMEOUT, sender="router", text="Okay, waving.")
            hear("stop")
            rec.wait("movement/stop", TIMEOUT, sender="router")
            rec.wait("movement/status", TIMEOUT, sender="movement", event="stopped")
            hear("what is the weather")
            rec.wait("tts/say", TIMEOUT, sender="router", text="It is sunny.")
            press("hold")
            rec.wait("wake/event", TIMEOUT, sender="wake", type="cancel")
            rec.wait("tts/control", TIMEOUT, sender="router", action="stop")
            reply = tools.request(t.MOVEMENT_COMMAND.name, t.MOVEMENT_COMMAND.event_type,
                                  {"action": "reset", "speed": 3}, timeout=TIMEOUT)
            assert reply.data["event"] == "completed", reply.data
            codes = services.terminate()
            assert codes == dict.fromkeys(SERVICES, 0), {
                n: services.log(n)[-2000:] for n, c in codes.items() if c}
            for name in SERVICES:
                rec.wait(f"system/health/{name}", TIMEOUT, sender=name, event="shutdown")
        finally:
            services.kill()
    yield Exchange(wire_log(broker.log_path.read_text(errors="replace")), list(rec.messages))


# The checks ----------------------------------------------------------------------------
def test_services_publish_and_subscribe_only_what_the_table_says(exchange: Exchange) -> None:
    problems = []
    seen: dict[tuple[str, str], set[str]] = {}
    for item in exchange.wire:
        if item.client not in SERVICES:
            continue
        seen.setdefault((item.client, item.kind), set()).add(item.topic)
        system = system_topic_ok(item.client, item)
        if system is not None:
            if not system:
                problems.append(f"{item}: not how a system topic is used (docs/api.md)")
            continue
        try:
            spec = t.spec_for(item.topic)
        except KeyError:
            problems.append(f"{item}: topic not in services/topics.py")
            continue
        roles = spec.publishers if item.kind == "publish" else spec.subscribers
        if item.kind == "will" or item.client not in roles:
            problems.append(f"{item}: {item.client} is not a {item.kind}r of {spec.name}")
        if item.qos != spec.qos:
            problems.append(f"{item}: QoS {item.qos}, the table says {spec.qos}")
        if item.kind == "publish" and item.retain != spec.retain:
            problems.append(f"{item}: retain {item.retain}, the table says {spec.retain}")
    assert not problems, "\n".join(problems)
    for name in SERVICES:
        assert MUST_PUBLISH[name] <= seen.get((name, "publish"), set()), name
        assert MUST_SUBSCRIBE[name] <= seen.get((name, "subscribe"), set()), name
        assert seen.get((name, "will")) == {f"system/health/{name}"}, name


def test_payloads_decode_to_the_table_types(exchange: Exchange) -> None:
    problems = []
    checked = set()
    for msg in exchange.messages:
        envelope = msg.envelope
        if envelope is None or envelope.source not in SERVICES:
            continue
        if msg.topic.startswith(("system/health/", "system/keepalive/", "system/reply/")):
            problems += system_payload_problems(msg)
            continue
        spec = t.spec_for(msg.topic)
        if envelope.type != spec.event_type:
            problems.append(f"{msg.topic}: type {envelope.type!r}, table {spec.event_type!r}")
        problems += t.check_payload(spec, msg.data)
        checked.add(msg.topic)
    assert not problems, "\n".join(problems)
    assert checked >= set().union(*MUST_PUBLISH.values())


def system_payload_problems(msg: Message) -> list[str]:
    data = msg.data if isinstance(msg.data, dict) else {}
    if msg.topic.startswith("system/health/"):
        if not isinstance(data.get("ok"), bool) or data.get("event") not in HEALTH_EVENTS:
            return [f"{msg.topic}: health {data}"]
    elif msg.topic.startswith("system/keepalive/"):
        if data.get("event") != "heartbeat" or not isinstance(data.get("stats"), dict):
            return [f"{msg.topic}: heartbeat {data}"]
    elif msg.correlate is None:
        return [f"{msg.topic}: a reply without correlate"]
    return []


def test_wire_log_parser_reads_mosquitto_2_0_lines() -> None:
    log = (
        "1700000000: New client connected from 127.0.0.1:5 as wake (p5, c1, k60).\n"
        "1700000000: Will message specified (141 bytes) (r1, q1).\n"
        "1700000000: \tsystem/health/wake\n"
        "1700000000: Sending CONNACK to wake (0, 0)\n"
        "1700000000: Received SUBSCRIBE from wake\n"
        "1700000000: \tsystem/state (QoS 1)\n"
        "1700000000: wake 1 system/state\n"
        "1700000000: Received PUBLISH from wake (d0, q1, r0, m2, 'wake/event', ... (9 bytes))\n"
    )
    assert wire_log(log) == [
        Wire("wake", "will", "system/health/wake", 1, True),
        Wire("wake", "subscribe", "system/state", 1),
        Wire("wake", "publish", "wake/event", 1, False),
    ]


# The ACL template ----------------------------------------------------------------------
def acl_grants(text: str) -> tuple[dict[str, dict[str, set[str]]], list[tuple[str, str]]]:
    """``{login: {"read": topics, "write": topics}}`` and the ``pattern`` lines."""
    users: dict[str, dict[str, set[str]]] = {}
    patterns: list[tuple[str, str]] = []
    user = None
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
            users[user] = {"read": set(), "write": set()}
        elif words[0] in ("topic", "pattern"):
            access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
            if words[0] == "pattern":
                patterns.append((access, topic))
                continue
            assert user is not None, f"topic line before any user: {line}"
            for right in ("read", "write"):
                if access in (right, "readwrite"):
                    users[user][right].add(topic)
        else:
            raise AssertionError(f"unexpected ACL line: {line}")
    return users, patterns


def granted(topics: set[str], topic: str) -> bool:
    from tars_mqtt.topics import matches

    return any(matches(grant, topic) for grant in topics)


MOCK_ONLY = {t.WAKE_SIMULATE.name}  # driven only on mock pins; never granted on the robot


def test_acl_grants_exactly_what_the_table_says() -> None:
    users, patterns = acl_grants(ACL.read_text())
    roles = set().union(*(s.publishers | s.subscribers for s in t.TABLE))
    assert roles - set(users) <= {"demo"}, "every role in the table has a broker login"
    problems = []
    for spec in t.TABLE:
        for login, rights in users.items():
            may_write = granted(rights["write"], spec.name)
            may_read = granted(rights["read"], spec.name)
            should_write = login in spec.publishers and spec.name not in MOCK_ONLY
            if may_write != should_write:
                problems.append(f"{login} {'may' if may_write else 'may not'} write {spec.name};"
                                f" the table's publishers: {sorted(spec.publishers)}")
            if login in spec.subscribers and spec.name not in MOCK_ONLY and not may_read:
                problems.append(f"{login} may not read {spec.name}, which it subscribes to")
    table_topics = {s.name for s in t.TABLE}
    system_reads = {("llm", "system/health/#")}  # which services are up, for the offline skills
    for login, rights in users.items():
        for topic in rights["read"] | rights["write"]:
            if topic != "#" and topic not in table_topics and (login, topic) not in system_reads \
                    or (login, topic) in system_reads and topic in rights["write"]:
                problems.append(f"{login}: {topic} is granted but not in the table")
    assert not problems, "\n".join(problems)
    # the system topics every client needs (health, heartbeat, request/reply)
    assert set(patterns) >= {("write", "system/health/%u"), ("readwrite", "system/keepalive/%u"),
                             ("readwrite", "system/reply/%u"), ("write", "system/reply/#")}


def test_the_acl_check_can_fail() -> None:
    users, _ = acl_grants("user movement\ntopic write movement/command\n")
    assert granted(users["movement"]["write"], "movement/command")
    assert not granted(users["movement"]["read"], "movement/command")
    assert granted({"#"}, "system/state") and not granted({"movement/+"}, "wake/event")

