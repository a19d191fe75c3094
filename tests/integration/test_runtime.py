"""Every service runs on services.runtime: the same exit codes for the same failures.

Each service is started as a process, as systemd starts it, against the robot's broker
as tars-install writes it (passwords, ACL, a TLS listener): a wrong password and a server
certificate that does not match both end the process with 78 (EX_CONFIG, which the units
do not restart) and a log line saying what to check; a bad setting ends it with 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime import EXIT_CONFIG, EXIT_SETTINGS
from tests.integration.test_acl_tls import (  # noqa: F401  (module fixtures)
    Certs,
    RobotBroker,
    _settings,
    certs,
    robot_broker,
    root,
    service_env,
)

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("movement", "wake", "router")


def _run(service: str, env: dict[str, str], timeout: float = 30.0) -> tuple[int, str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), "GPIOZERO_PIN_FACTORY": "mock",
            "MQTT_CLIENT_ID": service, **env}
    done = subprocess.run([sys.executable, "-m", f"services.{service}"], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def wrong_cert_broker(root: Path, certs: Certs,  # noqa: F811
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[RobotBroker]:
    broker = RobotBroker(tmp_path_factory.mktemp("wrong-cert"),
                         _settings(root, certs.wrong_cert, certs.wrong_key)).start()
    yield broker
    broker.stop()


@pytest.mark.parametrize("service", SERVICES)
def test_a_wrong_password_exits_78_naming_the_login_settings(
        service: str, root: Path, robot_broker: RobotBroker,  # noqa: F811
        tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    env = service_env(root, service, MQTT_URL=robot_broker.url,
                      MQTT_PASSWORD_FILE=str(wrong))
    code, log = _run(service, env)
    assert code == EXIT_CONFIG, log
    assert "MQTT_PASSWORD_FILE" in log and "not-the-password" not in log


@pytest.mark.parametrize("service", SERVICES)
def test_a_certificate_that_does_not_match_exits_78_naming_the_tls_settings(
        service: str, root: Path, certs: Certs,  # noqa: F811
        wrong_cert_broker: RobotBroker) -> None:
    tls = wrong_cert_broker.settings.tls
    assert tls is not None
    env = service_env(root, service, MQTT_URL=f"mqtts://127.0.0.1:{tls.port}",
                      MQTT_TLS_CA=str(certs.ca))
    code, log = _run(service, env)
    assert code == EXIT_CONFIG, log
    assert "TLS" in log and "MQTT_TLS_CA" in log


@pytest.mark.parametrize("service", SERVICES)
def test_a_bad_setting_exits_2_naming_the_variable(service: str) -> None:
    code, log = _run(service, {"MQTT_URL": "mqtt://127.0.0.1:1",
                               "TARS_HANDLER_LIMIT": "forever"})
    assert code == EXIT_SETTINGS, log
    assert "TARS_HANDLER_LIMIT" in log


@pytest.mark.parametrize(("service", "variable", "value"), [
    ("movement", "TARS_CALIBRATION", "/nonexistent/calibration.toml"),
    ("wake", "TARS_WAKE_HOLD_TIME", "soon"),
    ("router", "TARS_ROUTER_LLM_TIMEOUT", "soon"),
])
def test_a_bad_service_setting_found_by_setup_exits_2(service: str, variable: str,
                                                      value: str) -> None:
    code, log = _run(service, {"MQTT_URL": "mqtt://127.0.0.1:1", variable: value})
    assert code == EXIT_SETTINGS, log
    assert variable in log or value in log
