"""The robot's broker as tars-install writes it: passwords, the ACL and TLS on a real mosquitto.

One module-wide mosquitto runs the generated tars.conf (plain and TLS listeners on
127.0.0.1) with the generated password file and ACL; the clients read their credentials
from the generated env files, as the services do. The CA and server certificates are
made here with openssl.
"""

from __future__ import annotations

import getpass
import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.install import BrokerSettings, TLSListener, broker_conf, install
from tars_mqtt import ConnectError, Message, MQTTClient, MQTTConfig, PublishError
from tars_mqtt.testing import Broker, free_port, wait_for_port
from tests.support.tls import Certs, make_certs

_ids = itertools.count(1)
_LOG_LINES = "\n".join(["log_dest stderr", "log_type error", "log_type warning",
                        "log_type notice", "log_type information"])


class RobotBroker(Broker):
    """A mosquitto on the installer's broker config instead of the test default."""

    def __init__(self, workdir: Path, settings: BrokerSettings) -> None:
        super().__init__(workdir, port=settings.port)
        self.settings = settings

    def config_text(self) -> str:
        # mosquitto reads the password file after dropping to this user: on the robot it is
        # "mosquitto", and tmpfiles.d hands it the file; here it is whoever runs the tests.
        return (f"user {getpass.getuser()}\npersistence false\n{_LOG_LINES}\n"
                f"{broker_conf(self.settings)}")

    def start(self, timeout: float = 10.0) -> RobotBroker:
        super().start(timeout)
        if self.settings.tls is not None:
            wait_for_port(self.settings.tls.port, timeout)
        return self


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree written by tars-install: env files, passwords, passwd file and ACL."""
    path = tmp_path_factory.mktemp("root")
    install(path)
    return path


def installed_broker(root: Path, tls: TLSListener | None = None) -> BrokerSettings:
    """The broker settings of a tree tars-install wrote under ``root``, on a free port."""
    return BrokerSettings(port=free_port(), bind="127.0.0.1",
                          password_file=str(root / "etc/mosquitto/tars.passwd"),
                          acl_file=str(root / "etc/mosquitto/tars.acl"),
                          plugin=str(root / "usr/lib/tars/tars_login_ids.so"), tls=tls)


def _settings(root: Path, cert: Path, key: Path) -> BrokerSettings:
    return installed_broker(root, TLSListener(str(cert), str(key), port=free_port(),
                                              bind="127.0.0.1"))


@pytest.fixture(scope="module")
def robot_broker(root: Path, certs: Certs,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RobotBroker]:
    broker = RobotBroker(tmp_path_factory.mktemp("broker"),
                         _settings(root, certs.cert, certs.key)).start()
    yield broker
    broker.stop()


def service_env(root: Path, user: str, **overrides: str) -> dict[str, str]:
    """``/etc/tars/<user>.env`` as the service sees it, its paths moved into the test root."""
    env = {}
    for line in (root / f"etc/tars/{user}.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = str(root / value.lstrip("/")) if value.startswith("/etc/") else value
    env.update(overrides)
    return env


@pytest.fixture
def connect(root: Path, robot_broker: RobotBroker) -> Iterator[Callable[..., MQTTClient]]:
    """``connect(user, **env overrides)``: a started client with that user's credentials;
    ``setup(client)`` runs before it starts (to subscribe before the first message)."""
    clients: list[MQTTClient] = []

    def make(user: str, setup: Callable[[MQTTClient], object] | None = None,
             **overrides: str) -> MQTTClient:
        env = service_env(root, user, **{
            "MQTT_URL": robot_broker.url, "MQTT_CLIENT_ID": f"{user}-{next(_ids)}",
            "MQTT_RECONNECT_MIN_DELAY": "0.1", "MQTT_RECONNECT_MAX_DELAY": "0.5", **overrides})
        if user != "tools":  # a service's client id is its login name (the ACL relies on it)
            env["MQTT_CLIENT_ID"] = overrides.get("MQTT_CLIENT_ID", user)
        client = MQTTClient(MQTTConfig.from_env(environ=env))
        clients.append(client)
        if setup is not None:
            setup(client)
        client.start(timeout=10)
        return client

    yield make
    for client in clients:
        client.stop(timeout=2)


class Inbox:
    """Messages one subscription received; ``wait_for`` blocks on a condition, not a sleep."""

    def __init__(self, client: MQTTClient, topic: str) -> None:
        self.messages: list[Message] = []
        self._changed = threading.Condition()
        client.subscribe(topic, self._on_message, qos=1)

    def _on_message(self, msg: Message) -> None:
        with self._changed:
            self.messages.append(msg)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: any(predicate(m) for m in self.messages), timeout)


# Passwords and the ACL --------------------------------------------------------------------
def test_wake_may_announce_a_wake_but_not_drive_movement(
        connect: Callable[..., MQTTClient]) -> None:
    movement, router, wake = connect("movement"), connect("router"), connect("wake")
    commands = Inbox(movement, "movement/command")
    wakes = Inbox(router, "wake/event")

    wake.publish_event("wake/event", "wake.event", {"type": "wake", "source": "button"}
                       ).wait(5)
    assert wakes.wait_for(lambda m: m.data["type"] == "wake"), "router never got wake/event"
    assert wakes.messages[0].envelope is not None
    assert wakes.messages[0].envelope.source == "wake"

    # Under MQTT 5 mosquitto answers a denied QoS 1 publish with "Not authorized"; it has
    # handled (and dropped) it before that answer, so had it got through, it would reach
    # movement before the router's marker below.
    forged = wake.publish_event("movement/command", "movement.command", {"action": "walk"})
    with pytest.raises(PublishError, match="Not authorized"):
        forged.wait(5)
    marker = router.publish_event("movement/command", "movement.command", {"action": "marker"})
    marker.wait(5)
    assert commands.wait_for(lambda m: m.data == {"action": "marker"})
    assert [m.data for m in commands.messages] == [{"action": "marker"}], \
        "a movement/command sent with the wake service's credentials reached movement"


def test_a_wrong_password_is_refused_with_a_clear_error(
        connect: Callable[..., MQTTClient], tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    with pytest.raises(ConnectError) as refused:
        connect("wake", MQTT_PASSWORD_FILE=str(wrong))
    assert refused.value.reason in ("bad_credentials", "not_authorized")
    message = str(refused.value)
    assert "refused the connection" in message and "127.0.0.1" in message
    assert "not-the-password" not in message


def test_anonymous_clients_are_refused(robot_broker: RobotBroker) -> None:
    client = MQTTClient(MQTTConfig(url=robot_broker.url, client_id="anonymous"))
    try:
        with pytest.raises(ConnectError) as refused:
            client.start(timeout=10)
        assert refused.value.reason in ("bad_credentials", "not_authorized")
    finally:
        client.stop()


def _refused(connect: Callable[..., MQTTClient], user: str, client_id: str) -> str:
    with pytest.raises(ConnectError) as refused:
        connect(user, MQTT_CLIENT_ID=client_id)
    if refused.value.reason == "not_authorized":  # the error says where to look
        assert f"not with client id {client_id!r}" in str(refused.value)
        assert "the broker's log says which" in str(refused.value)
    return refused.value.reason


def test_no_login_can_take_over_another_logins_client_id(
        connect: Callable[..., MQTTClient], robot_broker: RobotBroker) -> None:
    """mosquitto disconnects the older of two clients with one id (and fires its will).
    With ids tied to logins, a wake or tools login asking for "movement" is refused."""
    movement, router = connect("movement"), connect("router")
    commands = Inbox(movement, "movement/command")
    seen = len(robot_broker.log_path.read_text(errors="replace"))
    assert _refused(connect, "wake", "movement") == "not_authorized"
    assert _refused(connect, "tools", "movement") == "not_authorized"
    router.publish_event("movement/command", "movement.command", {"action": "marker"}).wait(5)
    assert commands.wait_for(lambda m: m.data == {"action": "marker"}), "movement went deaf"
    assert movement.is_connected and movement.stats().reconnects == 0
    log = robot_broker.log_path.read_text(errors="replace")[seen:]
    assert "Client movement already connected" not in log
    assert "refused login 'tools' asking for client id 'movement', which belongs to login" \
        " 'movement'" in log, log
    assert [m.data for m in commands.messages] == [{"action": "marker"}]


def test_a_service_login_may_only_be_its_own_client_id(
        connect: Callable[..., MQTTClient], robot_broker: RobotBroker) -> None:
    """Otherwise a service's password could squat a tools client's id, or hide under
    another name while the ACL's %u rules still follow its login."""
    assert _refused(connect, "wake", "tars-mqtt-cli-1") == "not_authorized"
    assert _refused(connect, "wake", "wake2") == "not_authorized"
    assert connect("wake").is_connected  # its own name is fine


def test_tools_clients_have_ids_of_their_own_and_do_not_replace_each_other(
        connect: Callable[..., MQTTClient], robot_broker: RobotBroker) -> None:
    """A mosquitto_sub watching while tars-mqtt sends: two tools clients at once."""
    seen = len(robot_broker.log_path.read_text(errors="replace"))
    watcher = connect("tools", MQTT_CLIENT_ID="tools-watch")
    inbox = Inbox(watcher, "tts/say")
    sender = connect("tools", MQTT_CLIENT_ID="tools-send")
    sender.publish_event("tts/say", "tts.say", {"text": "both of us"}, qos=1).wait(5)
    assert inbox.wait_for(lambda m: m.data == {"text": "both of us"})
    assert watcher.is_connected and sender.is_connected
    assert watcher.stats().reconnects == sender.stats().reconnects == 0
    log = robot_broker.log_path.read_text(errors="replace")[seen:]
    assert "as tools-watch (p5" in log and "as tools-send (p5" in log, log
    assert "already connected" not in log


BURST = 1500  # more than mosquitto's default max_queued_messages (1000)


def test_an_offline_session_gets_every_message_the_broker_acknowledged(
        connect: Callable[..., MQTTClient]) -> None:
    """With mosquitto's default queue limit, messages beyond 1000 for a client that is away
    are acknowledged to their publisher and then silently thrown away."""
    session = {"MQTT_CLEAN_START": "false", "MQTT_SESSION_EXPIRY": "300"}
    away = connect("movement", **session)
    away.subscribe("movement/command", lambda m: None, qos=1)
    away.stop()
    router = connect("router")
    handles = [router.publish_event("movement/command", "movement.command", {"n": n})
               for n in range(BURST)]
    for handle in handles:
        handle.wait(10)  # every one acknowledged by the broker
    inbox: list[Inbox] = []
    connect("movement", setup=lambda c: inbox.append(Inbox(c, "movement/command")), **session)
    assert inbox[0].wait_for(lambda m: m.data == {"n": BURST - 1}, timeout=20), \
        f"{len(inbox[0].messages)} of {BURST} arrived"
    assert sorted(m.data["n"] for m in inbox[0].messages) == list(range(BURST))


# TLS --------------------------------------------------------------------------------------
def test_tls_with_the_ca_connects(connect: Callable[..., MQTTClient], certs: Certs,
                                  robot_broker: RobotBroker) -> None:
    assert robot_broker.settings.tls is not None
    url = f"mqtts://localhost:{robot_broker.settings.tls.port}"
    tools = connect("tools", MQTT_URL=url, MQTT_TLS_CA=str(certs.ca))
    assert tools.config.tls and tools.is_connected
    wakes = Inbox(tools, "wake/event")
    tools.publish_event("wake/event", "wake.event", {"type": "wake", "source": "cli"}).wait(5)
    assert wakes.wait_for(lambda m: m.data["source"] == "cli")


def test_tls_refuses_a_server_whose_certificate_does_not_match(
        root: Path, certs: Certs, tmp_path: Path) -> None:
    settings = _settings(root, certs.wrong_cert, certs.wrong_key)
    assert settings.tls is not None
    broker = RobotBroker(tmp_path / "broker", settings).start()
    try:
        env = service_env(root, "tools", MQTT_URL=f"mqtts://127.0.0.1:{settings.tls.port}",
                          MQTT_TLS_CA=str(certs.ca), MQTT_CLIENT_ID="tools-tls")
        client = MQTTClient(MQTTConfig.from_env(environ=env))
        try:
            with pytest.raises(ConnectError) as refused:
                client.start(timeout=10)
            assert refused.value.reason == "tls"
            assert "127.0.0.1" in str(refused.value)
            assert not client.is_connected
        finally:
            client.stop()
    finally:
        broker.stop()
