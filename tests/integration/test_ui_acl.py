"""The ui login on the robot's broker as tars-install writes it: what the page may send.

A real mosquitto on the generated password file and ACL; the ui client reads its
credentials from the generated ui.env, as tars-ui does on the robot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services import topics as t
from services.install import install
from tars_mqtt import MQTTClient, MQTTConfig, PublishError
from tests.integration.test_acl_tls import Inbox, RobotBroker, installed_broker, service_env


@pytest.fixture(scope="module")
def robot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, RobotBroker]]:
    root = tmp_path_factory.mktemp("root")
    install(root)
    broker = RobotBroker(tmp_path_factory.mktemp("broker"), installed_broker(root)).start()
    yield root, broker
    broker.stop()


def login(robot: tuple[Path, RobotBroker], user: str) -> MQTTClient:
    root, broker = robot
    env = service_env(root, user, MQTT_URL=broker.url)
    if user == "tools":
        env["MQTT_CLIENT_ID"] = "tools-observer"
    return MQTTClient(MQTTConfig.from_env(environ=env))


def test_ui_may_send_its_controls_and_nothing_that_impersonates_a_service(
        robot: tuple[Path, RobotBroker]) -> None:
    with login(robot, "ui") as ui, login(robot, "tools") as tools:
        inbox = Inbox(tools, "#")
        controls = [(t.MOVEMENT_STOP, {"reason": "test"}),
                    (t.WAKE_EVENT, {"type": "wake", "source": "ui"}),
                    (t.TTS_SAY, {"text": "hi"}),
                    (t.MOVEMENT_COMMAND, {"action": "wave"})]
        for spec, data in controls:
            ui.publish_event(spec.name, spec.event_type, data, qos=spec.qos).wait(5)
        for spec, data in (t.SYSTEM_STATE, {"state": "idle"}), \
                (t.MOVEMENT_STATUS, {"event": "stopped", "action": "none"}), \
                (t.TTS_CONTROL, {"action": "stop"}), (t.LLM_REQUEST, {"text": "x"}):
            with pytest.raises(PublishError, match="Not authorized"):
                ui.publish_event(spec.name, spec.event_type, data, qos=1).wait(5)
        marker = ui.publish_event(t.TTS_SAY.name, t.TTS_SAY.event_type, {"text": "marker"})
        marker.wait(5)
        assert inbox.wait_for(lambda m: m.topic == "tts/say" and m.data["text"] == "marker")
        sent = [(m.topic, m.data) for m in inbox.messages
                if m.envelope is not None and m.envelope.source == "ui"
                and not m.topic.startswith("system/")]
        assert sent == [(s.name, d) for s, d in controls] + [("tts/say", {"text": "marker"})]


def test_ui_reads_every_service_s_health_and_traffic(robot: tuple[Path, RobotBroker]) -> None:
    with login(robot, "movement") as movement, login(robot, "ui") as ui:
        inbox = Inbox(ui, "#")
        movement.publish_event(t.MOVEMENT_STATUS.name, t.MOVEMENT_STATUS.event_type,
                               {"event": "stopped", "action": "none"}).wait(5)
        assert inbox.wait_for(lambda m: m.topic == "movement/status")
        assert inbox.wait_for(lambda m: m.topic == "system/health/movement"
                              and m.data["event"] == "ready")
