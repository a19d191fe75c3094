"""tars-install and the web view: its login, env file, password, unit and ACL rows.

(systemd-analyze verifies its unit with the others in tests/services/test_install.py.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from services import topics as t
from services.install import SERVICES, USERS, install
from tests.integration.test_topic_contract import acl_grants, granted
from tests.services.test_install import directives

REPO = Path(__file__).resolve().parents[2]
CONTROLS = {t.WAKE_EVENT.name, t.TTS_SAY.name, t.MOVEMENT_COMMAND.name, t.MOVEMENT_STOP.name}


def test_install_writes_the_ui_login_env_and_enabled_unit(tmp_path: Path) -> None:
    install(tmp_path)
    assert "ui" in SERVICES and "ui" in USERS
    env = (tmp_path / "etc/tars/ui.env").read_text()
    assert "MQTT_CLIENT_ID=ui\n" in env and "MQTT_USERNAME=ui\n" in env
    assert "MQTT_PASSWORD_FILE=/etc/tars/ui.password\n" in env
    password = tmp_path / "etc/tars/ui.password"
    assert stat.S_IMODE(password.stat().st_mode) == 0o640  # group tars: the service reads it
    logins = [line.split(":")[0] for line in
              (tmp_path / "etc/mosquitto/tars.passwd").read_text().splitlines()]
    assert logins.count("ui") == 1
    assert "z /etc/tars/ui.password 0640 root tars -" in \
        (tmp_path / "usr/lib/tmpfiles.d/tars.conf").read_text()
    wants = tmp_path / "etc/systemd/system/tars.target.wants/tars-ui.service"
    assert os.readlink(wants) == "/etc/systemd/system/tars-ui.service"


def test_the_ui_unit_has_no_hardware_and_sees_only_its_own_password() -> None:
    found = directives((REPO / "systemd/tars-ui.service").read_text())
    keys = {(section, key): value for section, key, value in found}
    assert keys[("Service", "ExecStart")] == "/opt/tars/venv/bin/tars-ui"
    assert keys[("Service", "EnvironmentFile")] == "/etc/tars/ui.env"
    assert keys[("Service", "Type")] == "notify" and int(keys[("Service", "WatchdogSec")]) > 0
    assert keys[("Service", "User")] == "tars"
    assert keys[("Service", "PrivateDevices")] == "yes"
    assert ("Service", "SupplementaryGroups") not in keys
    assert not [v for s, k, v in found if k == "DeviceAllow"]
    hidden = set(keys[("Service", "InaccessiblePaths")].split())
    assert hidden == {f"-/etc/tars/{u}.password" for u in USERS if u != "ui"}
    assert keys[("Install", "WantedBy")] == "tars.target"


def test_the_acl_lets_ui_read_everything_and_write_only_its_controls() -> None:
    users, _ = acl_grants((REPO / "services/deploy/tars.acl").read_text())
    rights = users["ui"]
    assert rights["read"] == {"#"}
    assert rights["write"] == CONTROLS
    for spec in t.TABLE:
        assert granted(rights["write"], spec.name) == (spec.name in CONTROLS), spec.name
        assert ("ui" in spec.publishers) == (spec.name in CONTROLS), spec.name
