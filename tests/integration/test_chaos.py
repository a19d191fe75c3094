"""Chaos: hostile logins flood every topic their ACL lets them write; the robot carries on.

The broker runs the config, passwords and ACL tars-install writes (client ids tied to
logins), and the services run as processes with their own credentials, each under a
test-owned ``NOTIFY_SOCKET`` as systemd runs them; the speech services' logins (``stt``,
``tts``) are played by the test, not their engines. Four logins (``tools``, ``stt``,
``tts``, and ``llm``'s, before tars-llm starts: client ids belong to logins, so it cannot
run beside its own service) then send a few thousand random and
malformed messages on every topic they may write: bytes that are no JSON, JSON that is
no envelope, wrong types, 400-digit numbers, NaN, lone surrogates, wildcard and
unencodable ``reply_to``, deep nesting, oversized payloads, and valid commands among
them. Afterwards tars-llm starts (only the router and memory write its topics), the demo
scene plays through, movement answers a request, every service's watchdog pings go on,
and each stops cleanly.

The broker config gains one test-only login, ``demo``: it reads everything (the
recorder) and presses the mock button (``wake/simulate``, which the robot's ACL grants
to nobody: it exists only on mock pins).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services import topics as t
from services.demo import SCENE, SERVICE_ENV
from services.demo import SERVICES as DEMO_SERVICES
from services.install import hash_password, install
from tars_mqtt import MQTTClient, MQTTConfig, PublishError, PublishHandle
from tests.integration.test_acl_tls import RobotBroker, installed_broker, service_env
from tests.integration.test_topic_contract import acl_grants
from tests.support.speech_stub import SpeechStub

from .support import Pings, Recorder, Service

LATE = "llm"  # started after the flood, which uses its login
SPEECH = ("stt", "tts")  # their logins are the test's: one floods, one plays tars-tts
ALL_SERVICES = tuple(name for name in DEMO_SERVICES if name not in SPEECH)
SERVICES = tuple(name for name in ALL_SERVICES if name != LATE)
HOSTILE = ("tools", *SPEECH, LATE)
PER_LOGIN = 1000
SEED = 20240611
STEP_TIMEOUT = 10.0
DEMO_ACL = """
# test only: the demo's recorder and mock button
user demo
topic read #
topic write wake/simulate
user wake
topic read wake/simulate
"""


# The hostile traffic --------------------------------------------------------------------
def writable(login: str) -> list[str]:
    """The topics ``login`` may publish on, per the generated ACL, wildcards made concrete."""
    acl = (Path(__file__).resolve().parents[2] / "services/deploy/tars.acl").read_text()
    users, patterns = acl_grants(acl)
    topics = set(users[login]["write"])
    topics |= {p.replace("%u", login) for access, p in patterns if "write" in access}
    replies = {f"system/reply/{name}" for name in ALL_SERVICES}
    return sorted(replies | {topic for topic in topics if "#" not in topic})


_JUNK: list[Any] = [None, True, 0, -1, 3.5, 10**400, -(10**400), "", "\ud800", "x" * 5000,
                    [], [1, "\udfff"], {}, {"\ud800": 1}, {"a": {"b": [None]}}]


def junk(rng: random.Random) -> Any:
    return rng.choice(_JUNK)


def good_data(spec: t.TopicSpec | None, rng: random.Random) -> dict[str, Any]:
    """Data that fits the table (so some hostile messages are valid and change state)."""
    if spec is None:
        return {"reply": "ok"}
    data: dict[str, Any] = {}
    for name, kinds in spec.fields.items():
        if name in spec.optional and rng.random() < 0.5:
            continue
        if name in spec.values:
            data[name] = rng.choice(sorted(spec.values[name]))
        elif name == "action":
            data[name] = rng.choice(["wave", "bow", "pose", "moonwalk"])
        elif str in kinds:
            data[name] = rng.choice(["hello", "please wave", "stop", "what is up", "r1"])
        elif dict in kinds:
            data[name] = rng.choice([{}, {"angles": {"left_arm": 10}, "duration": 0.1}])
        else:
            data[name] = rng.choice([0.5, 1, 2, 99])
    return data


KINDS = 12


def hostile(topic: str, rng: random.Random, kind: int) -> bytes:
    """One hostile payload of ``kind`` (0..KINDS-1) for ``topic``."""
    spec = next((s for s in t.TABLE if s.name == topic), None)
    envelope: dict[str, Any] = {"id": uuid.uuid4().hex, "type": spec.event_type if spec
                                else "x.y", "ts": 1.0, "source": "hostile",
                                "data": good_data(spec, rng)}
    if kind == 0:
        return rng.randbytes(rng.randrange(300))
    if kind == 1:
        return json.dumps(envelope).encode()[:rng.randrange(1, 40)]
    if kind == 2:
        return json.dumps(junk(rng)).encode()
    if kind == 3:  # a field of the wrong type, or missing
        field = rng.choice(["id", "type", "ts", "source", "data"])
        if rng.random() < 0.3:
            del envelope[field]
        else:
            envelope[field] = junk(rng)
    elif kind == 4:  # numbers no float can hold, in the envelope or the data
        envelope[rng.choice(["ts", "seq"])] = 10**400
        envelope["data"] = {k: 10**400 for k in envelope["data"]} or {"n": 10**400}
    elif kind == 5:  # ujson reads NaN and Infinity; strict JSON peers refuse them
        return (json.dumps(envelope).replace('"ts": 1.0', '"ts": NaN')
                .replace("0.5", "Infinity").encode())
    elif kind == 6:  # lone surrogates: valid JSON escapes, no UTF-8 encoder takes them
        envelope[rng.choice(["id", "type", "source", "correlate"])] = "\udc00id"
        envelope["data"] = {k: f"{v}\ud800" if isinstance(v, str) else v
                            for k, v in envelope["data"].items()}
    elif kind == 7:  # reply_to nobody can answer on
        envelope["reply_to"] = rng.choice(["bad/+/topic", "#", "", "\ud800", "a/" * 40000,
                                           "system/reply/movement", 42])
    elif kind == 8:
        return b"[" * 5000 + b"]" * 5000
    elif kind == 9 and rng.random() < 0.05:  # a few oversized ones
        envelope["data"] = {"text": "x" * 300_000}
    elif kind == 10:  # fields the table does not know, or data that is no object
        envelope["data"] = rng.choice([{**envelope["data"], "\ud800": junk(rng)}, junk(rng)])
    # kind 11 (and the rest of 9): a valid message for the topic
    return json.dumps(envelope).encode()


def flood(client: MQTTClient, login: str, rng: random.Random) -> int:
    """``PER_LOGIN`` hostile messages over ``login``'s writable topics, every kind on every
    topic first (so no seed can miss one), then at random; how many were sent."""
    topics = writable(login)
    plan = [(topic, kind) for topic in topics for kind in range(KINDS)]
    plan += [(rng.choice(topics), rng.randrange(KINDS)) for _ in range(PER_LOGIN - len(plan))]
    handles: list[PublishHandle] = []
    for topic, kind in plan:
        handles.append(client.publish(topic, hostile(topic, rng, kind),
                                      qos=rng.choice((0, 1, 2))))
    for handle in handles:
        try:
            handle.wait(20)
        except PublishError as exc:  # the broker may refuse some; none may be lost unsaid
            raise AssertionError(f"{login}: {exc}") from None
    return len(handles)


# The robot -------------------------------------------------------------------------------
@pytest.fixture
def robot(tmp_path: Path) -> Iterator[tuple[Path, RobotBroker]]:
    """tars-install's tree and broker, plus the test-only ``demo`` login."""
    root = tmp_path / "root"
    install(root)
    (root / "etc/tars/demo.password").write_text("demo-password\n")
    with open(root / "etc/mosquitto/tars.passwd", "a") as passwd:
        passwd.write(f"demo:{hash_password('demo-password')}\n")
    with open(root / "etc/mosquitto/tars.acl", "a") as acl:
        acl.write(DEMO_ACL)
    broker = RobotBroker(tmp_path / "broker", installed_broker(root)).start()
    yield root, broker
    broker.stop()


def login(root: Path, broker: RobotBroker, user: str) -> MQTTConfig:
    password = root / f"etc/tars/{user}.password"
    env = {"MQTT_URL": broker.url, "MQTT_CLIENT_ID": user, "MQTT_USERNAME": user,
           "MQTT_PASSWORD_FILE": str(password), "MQTT_ENABLE_HEALTH": "false",
           "MQTT_ENABLE_HEARTBEAT": "false", "MQTT_RECONNECT_MIN_DELAY": "0.1"}
    return MQTTConfig.from_env(environ=env)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_hostile_logins_flood_every_topic_and_the_robot_carries_on(
        robot: tuple[Path, RobotBroker], tmp_path: Path) -> None:
    root, broker = robot
    pings = {name: Pings() for name in ALL_SERVICES}
    services: dict[str, Service] = {}
    rec_client = MQTTClient(login(root, broker, "demo"))
    rec = Recorder(rec_client)
    try:
        rec_client.start()

        def start(name: str) -> None:
            env = {k: v for k, v in service_env(root, name, MQTT_URL=broker.url).items()
                   if k != "MQTT_URL"}
            services[name] = Service(name, broker.url, tmp_path, **env, **pings[name].env(),
                                     **SERVICE_ENV, TARS_MEMORY_DIR=str(tmp_path / "memory"))

        for name in SERVICES:
            start(name)
        for name in SERVICES:
            ready(rec, services[name])

        sent = chaos(root, broker, rec)
        assert sent == PER_LOGIN * len(HOSTILE)
        for name in SERVICES:
            assert services[name].proc.poll() is None, services[name].log()[-3000:]
            pings[name].still_live(name)
        start(LATE)
        ready(rec, services[LATE])

        play_the_scene(root, broker, rec)
        with MQTTClient(login(root, broker, "tools")) as tools:
            reply = tools.request("movement/command", "movement.command",
                                  {"action": "reset", "speed": 3}, timeout=STEP_TIMEOUT)
            assert reply.data["event"] == "completed", reply.data
        for name in ALL_SERVICES:
            mark = rec.mark()
            rec.wait(f"system/keepalive/{name}", after=mark)  # still beating
            pings[name].still_live(name)
        for name, svc in services.items():
            assert svc.terminate() == 0, svc.log()[-3000:]
            rec.wait(f"system/health/{name}", event="shutdown")
    except AssertionError as exc:  # what the services said is the first thing to read
        tails = "\n".join(f"── {name}.log:\n{svc.log()[-1500:]}" for name, svc in services.items())
        raise AssertionError(f"{str(exc)[:3000]}\n{tails}") from None
    finally:
        for svc in services.values():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)
        rec_client.stop()
        for watch in pings.values():
            watch.close()


def ready(rec: Recorder, svc: Service) -> None:
    try:
        rec.wait(f"system/health/{svc.name}", timeout=30, event="ready")
    except AssertionError:
        raise AssertionError(f"{svc.name} never got ready:\n{svc.log()[-3000:]}") from None


def chaos(root: Path, broker: RobotBroker, rec: Recorder) -> int:
    """The flood, then markers that show each service has worked through it."""
    rng = random.Random(SEED)
    sent = 0
    with MQTTClient(login(root, broker, "stt")) as speech:
        # a question first, so the router subscribes llm/response before the llm floods it
        mark = rec.mark()
        speech.publish_event("stt/final", "stt.final", {"text": "what is the weather"}).wait(5)
        rec.wait("llm/request", after=mark, text="what is the weather", timeout=STEP_TIMEOUT)
        for user in HOSTILE:
            if user == "stt":
                sent += flood(speech, user, rng)
                continue
            with MQTTClient(login(root, broker, user)) as client:
                sent += flood(client, user, rng)
        marker = f"marker {uuid.uuid4().hex}"  # behind every stt/final of the flood
        mark = rec.mark()
        speech.publish_event("stt/final", "stt.final", {"text": marker}).wait(5)
        rec.wait("llm/request", after=mark, text=marker, timeout=20)
    with MQTTClient(login(root, broker, "tools")) as tools:
        marker = f"marker-{uuid.uuid4().hex[:20]}"  # behind every command of the flood
        mark = rec.mark()
        tools.publish_event("movement/command", "movement.command", {"action": marker}).wait(5)
        rec.wait("movement/status", after=mark, action=marker, event="rejected", timeout=20)
        mark = rec.mark()
        tools.publish_event("movement/stop", "movement.stop", {"reason": "chaos over"}).wait(5)
        rec.wait("movement/status", after=mark, event="stopped", timeout=STEP_TIMEOUT)
        mark = rec.mark()
        tools.publish_event("wake/event", "wake.event", {"type": "cancel", "source": "test"})
        rec.wait("system/state", after=mark, state="idle", timeout=STEP_TIMEOUT)
    return sent


def play_the_scene(root: Path, broker: RobotBroker, rec: Recorder) -> None:
    """The demo's scene (services/demo.py), its steps sent by the login that sends them."""
    with MQTTClient(login(root, broker, "stt")) as speech, \
            MQTTClient(login(root, broker, "tts")) as tts:
        SpeechStub(tts)
        senders: dict[str, Callable[[str, dict[str, Any]], object]] = {
            "wake/simulate": lambda topic, data: rec.client.publish_event(
                topic, t.WAKE_SIMULATE.event_type, data).wait(5),
            "user": lambda topic, data: speech.publish_event(  # heard as it was said
                t.STT_FINAL.name, t.STT_FINAL.event_type, data).wait(5),
        }
        heard = {"heard": "", "earlier": ""}
        for n, (title, topic, data, expects) in enumerate(SCENE, 1):
            mark = rec.mark()
            senders[topic](topic, data)
            if topic == "user":
                heard = {"heard": data["text"], "earlier": heard["heard"]}
            for want_topic, want in expects:
                fields = {k: v.format(**heard) if isinstance(v, str) else v
                          for k, v in want.items()}
                try:
                    rec.wait(want_topic, after=mark, timeout=STEP_TIMEOUT, **fields)
                except AssertionError as exc:
                    raise AssertionError(f"scene step {n} ({title}): {exc}") from None
