"""``tars-mqtt`` over TLS and with a login, given on the command line, against mosquitto.

The broker has its plain test listener and a TLS listener (server certificate from the
test CA); a second one asks for client certificates, a third for passwords. What is
checked is what an operator on a laptop does: the options (or ``MQTT_TLS_CA`` with
``--url``) connect, and each missing or wrong piece is refused with exit 2.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.install import hash_password
from tars_mqtt import MQTTClient, MQTTConfig
from tars_mqtt.cli import main
from tars_mqtt.testing import Broker, free_port, wait_for_port
from tests.support import Inbox
from tests.support.cli import no_env_broker, one_error_line
from tests.support.tls import Certs, make_certs

__all__ = ["no_env_broker"]  # a fixture, used by name


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


class TLSBroker(Broker):
    """The test broker plus one TLS listener (``tls_port``) with ``tls_lines`` of its own."""

    def __init__(self, workdir: Path, cert: Path, key: Path, tls_lines: str = "",
                 extra: str = "") -> None:
        self.tls_port = free_port()
        super().__init__(workdir, extra=(f"{extra}\nlistener {self.tls_port} 127.0.0.1\n"
                                         f"certfile {cert}\nkeyfile {key}\n{tls_lines}"))

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def start(self, timeout: float = 10.0) -> TLSBroker:
        super().start(timeout)
        wait_for_port(self.tls_port, timeout)
        return self


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[Callable[..., TLSBroker]]:
    brokers: list[TLSBroker] = []

    def start(cert: Path, key: Path, tls_lines: str = "", extra: str = "") -> TLSBroker:
        broker = TLSBroker(tmp_path / f"broker{len(brokers)}", cert, key, tls_lines, extra)
        brokers.append(broker)
        return broker.start()

    yield start
    for broker in brokers:
        broker.stop()


def plain_client(broker: Broker, **fields: Any) -> MQTTClient:
    """A client on the plain listener, to watch or feed what the command does over TLS."""
    return MQTTClient(MQTTConfig(url=broker.url, client_id=f"plain-{free_port()}",
                                 enable_heartbeat=False, **fields))


def pub_arrives(broker: Broker, argv: list[str], capsys: pytest.CaptureFixture[str],
                **login: Any) -> None:
    """``tars-mqtt pub tls/check ...`` exits 0 and a plain client receives it."""
    inbox = Inbox()
    with plain_client(broker, **login) as watcher:
        watcher.subscribe("tls/check", inbox, qos=1)
        code = main([*argv, "pub", "tls/check", "--data", '{"over": "tls"}'])
        assert code == 0, capsys.readouterr().err
        assert inbox.wait_count(1, 5)
    assert inbox.messages[0].data == {"over": "tls"}


def test_cafile_on_the_command_line(start_broker: Callable[..., TLSBroker], certs: Certs,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    broker = start_broker(certs.cert, certs.key)
    pub_arrives(broker, ["--url", broker.tls_url, "--cafile", str(certs.ca)], capsys)


def test_url_option_with_the_ca_from_the_environment(
        start_broker: Callable[..., TLSBroker], certs: Certs,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    broker = start_broker(certs.cert, certs.key)
    monkeypatch.setenv("MQTT_TLS_CA", str(certs.ca))  # as in tools.env; MQTT_URL unset
    pub_arrives(broker, ["--url", broker.tls_url], capsys)


def test_sub_over_tls_shows_a_retained_message(start_broker: Callable[..., TLSBroker],
                                               certs: Certs,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    broker = start_broker(certs.cert, certs.key)
    with plain_client(broker) as sender:
        sender.publish("tls/kept", b"kept", qos=1, retain=True).wait(5)
    assert main(["sub", "tls/kept", "--payload-only", "-C", "1", "-W", "10",
                 "-L", broker.tls_url, "--cafile", str(certs.ca)]) == 0
    assert capsys.readouterr().out == "kept\n"


def test_an_untrusted_broker_is_refused(start_broker: Callable[..., TLSBroker], certs: Certs,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    broker = start_broker(certs.cert, certs.key)
    assert main(["pub", "tls/check", "--url", broker.tls_url]) == 2  # the system's CAs
    assert "tls" in one_error_line(capsys.readouterr().err).lower()


def test_insecure_accepts_a_certificate_for_another_name(
        start_broker: Callable[..., TLSBroker], certs: Certs,
        capsys: pytest.CaptureFixture[str]) -> None:
    broker = start_broker(certs.wrong_cert, certs.wrong_key)
    trusted = ["--url", broker.tls_url, "--cafile", str(certs.ca)]
    assert main([*trusted, "pub", "tls/check"]) == 2
    assert "tls" in one_error_line(capsys.readouterr().err).lower()
    pub_arrives(broker, [*trusted, "--insecure"], capsys)


def test_client_certificate_and_key(start_broker: Callable[..., TLSBroker], certs: Certs,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    broker = start_broker(certs.cert, certs.key,
                          f"cafile {certs.ca}\nrequire_certificate true\n")
    trusted = ["--url", broker.tls_url, "--cafile", str(certs.ca)]
    assert main([*trusted, "pub", "tls/check"]) == 2
    one_error_line(capsys.readouterr().err)
    pub_arrives(broker, [*trusted, "--cert", str(certs.client_cert),
                         "--key", str(certs.client_key)], capsys)


def test_username_and_password_file(start_broker: Callable[..., TLSBroker], certs: Certs,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(f"tools:{hash_password('tools-secret')}\n"
                      f"watcher:{hash_password('watcher-secret')}\n")
    passwd.chmod(0o600)
    broker = start_broker(certs.cert, certs.key,
                          extra=f"allow_anonymous false\npassword_file {passwd}\n"
                          f"# mosquitto reads it as {getpass.getuser()}")
    secret, wrong = tmp_path / "tools.password", tmp_path / "wrong.password"
    secret.write_text("tools-secret\n")
    wrong.write_text("nope\n")
    trusted = ["--url", broker.tls_url, "--cafile", str(certs.ca)]
    assert main([*trusted, "pub", "tls/check", "-u", "tools", "--password-file",
                 str(wrong)]) == 2
    assert "nope" not in capsys.readouterr().err  # never a secret in a message
    assert main(["pub", "tls/check", *trusted]) == 2  # anonymous
    capsys.readouterr()
    pub_arrives(broker, [*trusted, "--username", "tools", "--password-file", str(secret)],
                capsys, username="watcher", password="watcher-secret")
