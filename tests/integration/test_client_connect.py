"""``start()`` against a real mosquitto: it connects, or raises ``ConnectError`` saying why."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tars_mqtt import ConnectError, MQTTClient, MQTTConfig, MQTTError
from tars_mqtt.testing import Broker, free_port, wait_for_port
from tests.tars_mqtt.support import WAIT, Collector

MakeConfig = Callable[..., MQTTConfig]
SECRET = "c0rrect-H0rse"


def _password_file(path: Path, user: str, password: str) -> Path:
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), user, password], check=True,
                   capture_output=True)
    return path


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto that wants a login: user ``robot``, password ``SECRET``.

    ``allow_anonymous false`` comes after the fixture's ``allow_anonymous true``; mosquitto
    takes the later line (pinned by ``test_anonymous_refused_by_a_login_broker``).
    """
    passwords = _password_file(tmp_path / "passwd", "robot", SECRET)
    broker = Broker(tmp_path / "auth", extra=f"password_file {passwords}\nallow_anonymous false")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def clients() -> Iterator[list[MQTTClient]]:
    made: list[MQTTClient] = []
    yield made
    for client in made:
        client.stop(timeout=2)


def _paho_thread_alive(client: MQTTClient) -> bool:
    thread = client.paho._thread
    return thread is not None and bool(thread.is_alive())


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_bad_password_is_refused_with_the_brokers_reason(
        auth_broker: Broker, make_config: MakeConfig, clients: list[MQTTClient],
        protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    client = MQTTClient(make_config(url=auth_broker.url, username="robot",
                                    password="wrong-" + SECRET, protocol=protocol))
    clients.append(client)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectError) as caught:
        client.start(timeout=WAIT)
    error = caught.value
    # mosquitto 2.0.11 answers a wrong password with "Not authorized" (0x87), not 0x86
    assert (error.reason, error.reason_code) == ("not_authorized", 0x87)
    assert "Not authorized (0x87)" in str(error) and f":{auth_broker.port}" in str(error)
    assert isinstance(error, ConnectionError)
    assert SECRET not in str(error) and SECRET not in caplog.text
    assert not client.is_connected and not _paho_thread_alive(client)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_anonymous_refused_by_a_login_broker(
        auth_broker: Broker, make_config: MakeConfig, clients: list[MQTTClient],
        protocol: str) -> None:
    client = MQTTClient(make_config(url=auth_broker.url, protocol=protocol))
    clients.append(client)
    with pytest.raises(ConnectError) as caught:
        client.start(timeout=WAIT)
    assert caught.value.reason == "not_authorized"


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_right_credentials_connect(auth_broker: Broker, make_config: MakeConfig,
                                   clients: list[MQTTClient], protocol: str) -> None:
    client = MQTTClient(make_config(url=f"mqtt://robot:{SECRET}@127.0.0.1:{auth_broker.port}",
                                    protocol=protocol))
    clients.append(client)
    client.start(timeout=WAIT)
    got = Collector()
    client.subscribe("auth/ok", got, qos=1)
    client.publish("auth/ok", b"in", qos=1).wait(WAIT)
    assert got.wait_for(1)
    assert SECRET not in repr(client.config)


def test_password_file_from_the_environment(auth_broker: Broker, tmp_path: Path,
                                            clients: list[MQTTClient]) -> None:
    """The systemd-credentials path: MQTT_PASSWORD_FILE, no secret in the environment."""
    secret_file = tmp_path / "credential"
    secret_file.write_text(SECRET + "\n")
    config = MQTTConfig.from_env(environ={
        "MQTT_URL": auth_broker.url, "MQTT_CLIENT_ID": "pwfile-client",
        "MQTT_USERNAME": "robot", "MQTT_PASSWORD_FILE": str(secret_file),
    })
    client = MQTTClient(config)
    clients.append(client)
    client.start(timeout=WAIT)
    assert client.is_connected


def test_username_on_a_broker_without_password_file(
        make_config: MakeConfig, clients: list[MQTTClient], broker: Broker) -> None:
    """Some brokers refuse such a client "Not authorized"; the fixture's mosquitto 2.0.11
    (``allow_anonymous true``, no ``password_file``) lets it in. Pinned as seen."""
    client = MQTTClient(make_config(username="robot", password=SECRET))
    clients.append(client)
    client.start(timeout=WAIT)
    assert client.is_connected
    assert "u'robot'" in broker.log()


def test_unreachable_broker(make_config: MakeConfig, clients: list[MQTTClient]) -> None:
    port = free_port()  # nothing listens there
    client = MQTTClient(make_config(url=f"mqtt://127.0.0.1:{port}"))
    clients.append(client)
    with pytest.raises(ConnectError) as caught:
        client.start(timeout=WAIT)
    # "unreachable", not "timeout": start() did not sit out its timeout
    assert caught.value.reason == "unreachable" and caught.value.reason_code is None
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert not _paho_thread_alive(client)


def test_broker_that_never_answers_times_out(make_config: MakeConfig,
                                             clients: list[MQTTClient]) -> None:
    """TCP accepts, but no CONNACK ever comes (a wedged broker or the wrong service)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    connected = threading.Event()

    def accept_and_ignore() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        accepted.append(conn)
        connected.set()

    acceptor = threading.Thread(target=accept_and_ignore, daemon=True)
    acceptor.start()
    port = server.getsockname()[1]
    client = MQTTClient(make_config(url=f"mqtt://127.0.0.1:{port}"))
    clients.append(client)
    try:
        with pytest.raises(ConnectError) as caught:
            client.start(timeout=0.5)
        assert connected.is_set()  # it did reach the listener
        assert caught.value.reason == "timeout"
        assert f"127.0.0.1:{port}" in str(caught.value) and "0.5 s" in str(caught.value)
        assert not _paho_thread_alive(client)
    finally:
        server.close()
        for conn in accepted:
            conn.close()
        acceptor.join(WAIT)


def test_start_again_after_a_failed_start(tmp_path: Path, make_config: MakeConfig,
                                          clients: list[MQTTClient]) -> None:
    port = free_port()
    client = MQTTClient(make_config(url=f"mqtt://127.0.0.1:{port}"))
    clients.append(client)
    with pytest.raises(ConnectError):
        client.start(timeout=WAIT)
    late = Broker(tmp_path / "late", port=port).start()
    try:
        client.start(timeout=WAIT)
        assert client.is_connected
        client.stop(timeout=WAIT)
    finally:
        late.stop()


def test_start_twice_is_an_error(make_client: Callable[..., MQTTClient]) -> None:
    client = make_client()
    with pytest.raises(MQTTError, match="already running"):
        client.start()


_CERTS = """
set -e
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=tars-test-ca
openssl req $ec -keyout server.key -out server.csr -subj /CN=127.0.0.1
printf "subjectAltName=IP:127.0.0.1\\n" > san.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \\
    -extfile san.cnf -out server.pem
openssl req -x509 $ec -keyout stranger.key -out stranger.pem -days 2 -subj /CN=stranger
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 it signed, and an unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    where = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", "-c", _CERTS], cwd=where, check=True, capture_output=True)
    return where


@pytest.fixture
def tls_broker(tmp_path: Path, certs: Path) -> Iterator[tuple[Broker, int]]:
    """The fixture's plain listener plus a TLS listener; yields (broker, TLS port)."""
    tls_port = free_port()
    broker = Broker(tmp_path / "tls", extra=(
        f"listener {tls_port} 127.0.0.1\ncafile {certs}/ca.pem\n"
        f"certfile {certs}/server.pem\nkeyfile {certs}/server.key"))
    broker.start()
    wait_for_port(tls_port)
    yield broker, tls_port
    broker.stop()


def test_mqtts_with_the_brokers_ca(tls_broker: tuple[Broker, int], certs: Path,
                                   make_config: MakeConfig, clients: list[MQTTClient]) -> None:
    _, tls_port = tls_broker
    client = MQTTClient(make_config(url=f"mqtts://127.0.0.1:{tls_port}",
                                    tls_ca=str(certs / "ca.pem")))
    clients.append(client)
    client.start(timeout=WAIT)
    got = Collector()
    client.subscribe("tls/t", got, qos=1)
    client.publish_event("tls/t", "test.tls", {"secure": True}).wait(WAIT)
    assert got.wait_for(1) and got.messages[0].data == {"secure": True}


def test_mqtts_with_an_untrusted_certificate(tls_broker: tuple[Broker, int], certs: Path,
                                             make_config: MakeConfig,
                                             clients: list[MQTTClient]) -> None:
    _, tls_port = tls_broker
    client = MQTTClient(make_config(url=f"mqtts://127.0.0.1:{tls_port}",
                                    tls_ca=str(certs / "stranger.pem")))
    clients.append(client)
    with pytest.raises(ConnectError) as caught:
        client.start(timeout=WAIT)
    # reachable but not trusted: "tls", not "unreachable" (which sends people to the cables)
    assert caught.value.reason == "tls"
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert f"127.0.0.1:{tls_port}" in str(caught.value)
