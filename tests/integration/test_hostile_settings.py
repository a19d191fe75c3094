"""Settings as an operator really types them, against a mosquitto that checks passwords."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tars_mqtt import ConnectError, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker

PASSWORD = "p#ss/w?rd@1:x"  # every character that used to end a URL's credentials early


class PasswordBroker(Broker):
    """The test broker with logins: anonymous clients are refused."""

    def __init__(self, workdir: Path, passwd: Path) -> None:
        super().__init__(workdir)
        self.passwd = passwd

    def config_text(self) -> str:
        return (super().config_text().replace("allow_anonymous true", "allow_anonymous false")
                + f"password_file {self.passwd}\n")


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "movement", PASSWORD],
                   check=True, capture_output=True, timeout=30)
    passwd.chmod(0o600)
    broker = PasswordBroker(tmp_path / "broker", passwd).start()
    yield broker
    broker.stop()


@pytest.mark.timeout(30)
def test_a_password_with_url_characters_logs_in_unencoded(password_broker: Broker) -> None:
    url = f"mqtt://movement:{PASSWORD}@127.0.0.1:{password_broker.port}"
    config = MQTTConfig.from_env(environ={"MQTT_URL": url, "MQTT_CLIENT_ID": "movement"})
    assert (config.username, config.password) == ("movement", PASSWORD)
    assert config.url == f"mqtt://127.0.0.1:{password_broker.port}"
    with MQTTClient(config) as client:
        assert client.is_connected
    wrong = config.replace(password=PASSWORD[:-1])
    with pytest.raises(ConnectError) as caught:
        MQTTClient(wrong).start(timeout=10)
    assert caught.value.reason in ("bad_credentials", "not_authorized")
    assert PASSWORD[:4] not in str(caught.value) and PASSWORD[:4] not in repr(wrong)
