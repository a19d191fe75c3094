"""tars-install into a temporary root: the tree, its idempotence, and systemd's verdict.

Nothing here touches the host: every run has its own root under tmp_path, and a run
into a root other than / must never call a host command.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import install as installer
from services.install import (
    SERVICES,
    USERS,
    BrokerSettings,
    TLSListener,
    broker_conf,
    hash_password,
    host_commands,
    install,
    main,
    password_matches,
)
from tars_mqtt import MQTTConfig

REPO = Path(__file__).resolve().parents[2]
UNITS = [f"tars-{s}.service" for s in SERVICES]
NO_PINS = {"llm", "memory", "ui"}  # no GPIO group, no devices at all
AUDIO = {"tts", "stt"}  # the sound card, no GPIO


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under root: kind, permission bits, and content or link target."""
    tree: dict[str, tuple[str, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            tree[rel] = ("link", mode, os.readlink(path))
        elif path.is_dir():
            tree[rel] = ("dir", mode, "")
        else:
            tree[rel] = ("file", mode, path.read_text(errors="replace"))
    return tree


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, keeping repeated keys."""
    found: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, value = line.split("=", 1)
        found.append((section, key, value))
    return found


@pytest.fixture
def no_host_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tars-install ran a host command: {args}")
    monkeypatch.setattr(installer, "_run_host", refuse)


# The tree ---------------------------------------------------------------------------------
def test_installing_twice_gives_the_same_tree(tmp_path: Path, no_host_commands: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root)]) == 0
    first = snapshot(root)
    capsys.readouterr()
    assert main(["--root", str(root)]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert snapshot(root) == first
    assert install(root).changed == []


def test_the_tree(tmp_path: Path, no_host_commands: None) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "--prefix", "/srv/tars"]) == 0
    tree = snapshot(root)
    for user in USERS:
        kind, mode, password = tree[f"etc/tars/{user}.password"]
        assert mode == (0o640 if user in SERVICES else 0o600), user
        assert len(password.strip()) >= 24 and ":" not in password
        assert tree[f"etc/tars/{user}.env"][1] == 0o644
    env = dict(line.split("=", 1) for line in tree["etc/tars/wake.env"][2].splitlines()
               if line and not line.startswith("#"))
    assert env == {"MQTT_URL": "mqtt://127.0.0.1:1883", "MQTT_CLIENT_ID": "wake",
                   "MQTT_USERNAME": "wake", "MQTT_PASSWORD_FILE": "/etc/tars/wake.password",
                   "TARS_HANDLER_LIMIT": "30"}
    assert tree["etc/mosquitto/tars.passwd"][1] == 0o600
    assert tree["etc/mosquitto/tars.acl"][1] == 0o600
    assert "allow_anonymous false" in tree["etc/mosquitto/conf.d/tars.conf"][2]
    assert "u tars " in tree["usr/lib/sysusers.d/tars.conf"][2]
    assert "z /etc/tars/wake.password 0640 root tars" in tree["usr/lib/tmpfiles.d/tars.conf"][2]
    for unit in UNITS:
        text = tree[f"etc/systemd/system/{unit}"][2]
        assert f"ExecStart=/srv/tars/venv/bin/{unit[:-8]}\n" in text
        assert tree[f"etc/systemd/system/tars.target.wants/{unit}"] == (
            "link", 0o777, f"/etc/systemd/system/{unit}")
    assert tree["etc/systemd/system/multi-user.target.wants/tars.target"][2] == \
        "/etc/systemd/system/tars.target"


def test_passwords_are_kept_and_the_broker_file_follows_them(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root)
    kept = (root / "etc/tars/router.password").read_text().strip()
    (root / "etc/tars/wake.password").write_text("chosen-by-hand\n")
    changed = install(root).changed
    assert changed == ["etc/mosquitto/tars.passwd"]
    assert (root / "etc/tars/router.password").read_text().strip() == kept
    hashes = dict(line.split(":", 1)
                  for line in (root / "etc/mosquitto/tars.passwd").read_text().splitlines())
    assert password_matches("chosen-by-hand", hashes["wake"])
    assert password_matches(kept, hashes["router"])
    assert not password_matches(kept, hashes["wake"])


def test_no_enable_leaves_no_symlinks(tmp_path: Path, no_host_commands: None) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "--no-enable"]) == 0
    assert not [p for p in root.rglob("*") if p.is_symlink()]


def test_bad_options_are_refused_with_the_reason(tmp_path: Path, no_host_commands: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "--prefix", "opt/tars"]) == 2
    assert "--prefix must be an absolute path" in capsys.readouterr().err
    assert main(["--root", str(root), "--url", "mqtts://robot:8883"]) == 2
    assert "give --tls-ca" in capsys.readouterr().err
    assert main(["--root", str(root), "--url", "http://robot"]) == 2
    assert "--url: url: scheme must be" in capsys.readouterr().err
    assert not root.exists()


def test_env_files_configure_the_client(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, url="mqtts://robot.local:8883", tls_ca="/etc/mosquitto/certs/ca.crt")
    env = dict(line.split("=", 1) for line in
               (root / "etc/tars/movement.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["MQTT_TLS_CA"] == "/etc/mosquitto/certs/ca.crt"
    env.update(MQTT_PASSWORD_FILE=str(root / "etc/tars/movement.password"),
               MQTT_TLS_CA=str(root / "etc/tars/movement.env"))  # any existing file
    config = MQTTConfig.from_env(environ=env)
    assert (config.client_id, config.username, config.tls) == ("movement", "movement", True)
    assert config.password == (root / "etc/tars/movement.password").read_text().strip()


def test_broker_conf_with_tls() -> None:
    conf = broker_conf(BrokerSettings(tls=TLSListener("/c/server.crt", "/c/server.key")))
    assert "listener 1883 127.0.0.1\n" in conf
    assert "listener 8883\ncertfile /c/server.crt\nkeyfile /c/server.key\n" in conf
    assert "cafile" not in conf
    assert "listener 8883" not in broker_conf(BrokerSettings())


def test_broker_conf_ties_client_ids_to_logins_and_drops_nothing() -> None:
    conf = broker_conf(BrokerSettings(tls=TLSListener("/c/server.crt", "/c/server.key")))
    lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    first_listener = next(i for i, line in enumerate(lines) if line.startswith("listener "))
    # global options: before the first listener, or mosquitto applies them to that listener
    assert lines.index("plugin /usr/lib/tars/tars_login_ids.so") < first_listener
    assert lines.index("plugin_opt_logins " + " ".join(SERVICES)) < first_listener
    assert not any("use_username_as_clientid" in line for line in lines)
    assert {"max_queued_messages 0", "max_inflight_messages 20", "set_tcp_nodelay true",
            "allow_anonymous false"} <= set(lines)


def test_the_plugin_is_built_once_and_again_when_its_source_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    assert {"usr/lib/tars/tars_login_ids.c", "usr/lib/tars/tars_login_ids.so"} <= set(
        install(root).changed)
    library = root / "usr/lib/tars/tars_login_ids.so"
    assert library.read_bytes()[:4] == b"\x7fELF" and stat.S_IMODE(library.stat().st_mode) == 0o644
    assert install(root).changed == []
    library.unlink()  # a failed build leaves none: the next run builds it
    assert install(root).changed == ["usr/lib/tars/tars_login_ids.so"]
    (root / "usr/lib/tars/tars_login_ids.c").write_text("/* edited */\n")
    assert install(root).changed == ["usr/lib/tars/tars_login_ids.c",
                                     "usr/lib/tars/tars_login_ids.so"]
    assert host_commands(["usr/lib/tars/tars_login_ids.so"], user_exists=True,
                         gpio_exists=True)[-1] == ["systemctl", "restart", "mosquitto.service"]


def test_no_compiler_fails_naming_the_packages_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert main(["--root", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err
    assert "no C compiler" in err and "apt-get install gcc mosquitto-dev libmosquitto-dev" in err
    assert not (tmp_path / "root/usr/lib/tars/tars_login_ids.so").exists()


def test_missing_headers_fail_naming_the_packages_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cc = tmp_path / "cc"  # a compiler that cannot find mosquitto_broker.h
    fake_cc.write_text("#!/bin/sh\necho 'x.c:30:10: fatal error: mosquitto_broker.h: "
                       "No such file or directory' >&2\nexit 1\n")
    fake_cc.chmod(0o755)
    monkeypatch.setenv("CC", str(fake_cc))
    with pytest.raises(installer.InstallError, match="mosquitto plugin headers are missing"):
        install(tmp_path / "root")


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed (scripts/setup.sh installs mosquitto)")
    passwd = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(passwd), "wake", "s3cret"], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    assert password_matches("s3cret", theirs)
    assert not password_matches("s3cre", theirs)
    salt = base64.b64decode(theirs.split("$")[3])
    assert hash_password("s3cret", salt=salt) == theirs


def test_host_commands_only_for_what_is_missing() -> None:
    fresh = host_commands(["etc/mosquitto/tars.acl"], user_exists=False, gpio_exists=False)
    assert [c[:2] for c in fresh] == [["groupadd", "--system"], ["useradd", "--system"],
                                     ["systemd-tmpfiles", "--create"],
                                     ["systemctl", "daemon-reload"], ["systemctl", "restart"]]
    again = host_commands([], user_exists=True, gpio_exists=True)
    assert again == [["systemd-tmpfiles", "--create", "/usr/lib/tmpfiles.d/tars.conf"],
                     ["systemctl", "daemon-reload"]]


def test_root_slash_runs_the_host_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(installer, "install", lambda root, **kw: installer.Report(
        ["etc/mosquitto/tars.acl"]) if root == Path("/") else pytest.fail(str(root)))
    monkeypatch.setattr(installer, "_run_host", ran.append)
    assert main(["--root", "/"]) == 0
    assert ["systemctl", "daemon-reload"] in ran
    assert ["systemctl", "restart", "mosquitto.service"] in ran


# The units --------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", UNITS)
def test_service_units_say_how_they_are_supervised(unit: str) -> None:
    service = unit[len("tars-"):-len(".service")]
    found = directives((REPO / "systemd" / unit).read_text())
    keys = {(section, key): value for section, key, value in found}
    expected = {
        ("Unit", "Wants"): "mosquitto.service",
        ("Unit", "PartOf"): "tars.target",
        ("Service", "Type"): "notify",
        ("Service", "ExecStart"): f"/opt/tars/venv/bin/tars-{service}",
        ("Service", "EnvironmentFile"): f"/etc/tars/{service}.env",
        ("Service", "Restart"): "on-failure",
        ("Service", "User"): "tars",
        ("Service", "SupplementaryGroups"): None if service in NO_PINS else
        "audio" if service in AUDIO else "gpio",
        ("Service", "NoNewPrivileges"): "yes",
        ("Service", "ProtectSystem"): "strict",
        ("Service", "ProtectHome"): "yes",
        ("Service", "PrivateTmp"): "yes",
        ("Service", "DevicePolicy"): "closed",
        ("Install", "WantedBy"): "tars.target",
    }
    assert {k: keys.get(k) for k in expected} == expected
    assert "mosquitto.service" in keys[("Unit", "After")].split()
    assert int(keys[("Service", "WatchdogSec")]) > 0
    if service in NO_PINS:
        assert keys[("Service", "PrivateDevices")] == "yes"
        assert ("Service", "DeviceAllow") not in keys
    else:
        device = "char-alsa rw" if service in AUDIO else "char-gpiochip rw"
        assert ("Service", "DeviceAllow", device) in found
        assert ("Service", "PrivateDevices") not in keys, "it would hide the devices"
    assert keys[("Service", "WorkingDirectory")] == f"/run/tars-{service}"  # lgpio writes there
    hidden = keys[("Service", "InaccessiblePaths")].split()
    assert f"-/etc/tars/{service}.password" not in hidden
    assert {f"-/etc/tars/{u}.password" for u in USERS} - set(hidden) == {
        f"-/etc/tars/{service}.password"}


@pytest.fixture(scope="session")
def systemd_analyze() -> Iterator[str]:
    """``systemd-analyze``, installed from Debian's packages when it is missing."""
    found = shutil.which("systemd-analyze")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        policy = subprocess.run(["apt-cache", "policy", "systemd"], capture_output=True,
                                text=True, env=env, check=False).stdout
        if "Candidate: (none)" in policy or "Candidate:" not in policy:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "systemd"], env=env, check=True, stdout=subprocess.DEVNULL)
        found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is missing and cannot be installed here (needs root"
                    " and apt-get): apt-get install systemd")
    yield found


@pytest.mark.timeout(600)  # the first use may install systemd
def test_systemd_analyze_verify_passes_on_every_unit(tmp_path: Path, systemd_analyze: str,
                                                     no_host_commands: None) -> None:
    # verify insists that ExecStart exists: install with a prefix that holds stand-ins.
    prefix = tmp_path / "prefix"
    (prefix / "venv/bin").mkdir(parents=True)
    for service in SERVICES:
        script = prefix / f"venv/bin/tars-{service}"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    root = tmp_path / "root"
    assert main(["--root", str(root), "--prefix", str(prefix)]) == 0
    units = root / "etc/systemd/system"
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:", "SYSTEMD_LOG_COLOR": "0"}
    for unit in [*UNITS, "tars.target"]:
        done = subprocess.run([systemd_analyze, "verify", str(units / unit)], env=env,
                              capture_output=True, text=True, timeout=50, check=False)
        # verify exits 0 even for unknown keys and bad values: its warnings count too
        ours = [line for line in done.stderr.splitlines() if "tars" in line]
        assert done.returncode == 0 and not ours, f"{unit}:\n{done.stderr}"
