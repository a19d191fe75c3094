"""Connection options go before or after the command, and are applied before the checks.

Every connection option is parsed in both places for every command; the ones that
matter on the wire (``--url``, ``--client-id``) are also run against mosquitto.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tars_mqtt import MQTTClient
from tars_mqtt.cli import main
from tars_mqtt.cli._args import CONNECTION, Option, build_parser
from tars_mqtt.cli._connect import config_for
from tests.support import Inbox
from tests.support.cli import no_env_broker, url

__all__ = ["no_env_broker", "url"]  # fixtures used by name

# A command line each command accepts, to put the options before or after.
COMMANDS = {
    "pub": ["pub", "a/b"],
    "sub": ["sub", "a/#"],
    "health": ["health"],
    "request": ["request", "a/b", "--type", "t"],
    "completion": ["completion", "bash"],
}
SAMPLES: dict[str, tuple[list[str], object]] = {  # dest -> (what follows the flag, parsed)
    "url": (["mqtt://elsewhere:1884"], "mqtt://elsewhere:1884"),
    "client_id": (["probe-1"], "probe-1"),
    "username": (["tools"], "tools"),
    "password_file": (["/etc/tars/tools.password"], "/etc/tars/tools.password"),
    "cafile": (["ca.crt"], "ca.crt"),
    "cert": (["me.crt"], "me.crt"),
    "key": (["me.key"], "me.key"),
    "insecure": ([], True),
    "connect_timeout": (["7.5"], 7.5),
    "verbose": ([], 1),
}


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_every_connection_option_has_a_sample() -> None:
    assert {o.dest for o in CONNECTION} == set(SAMPLES)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("option", CONNECTION, ids=lambda o: o.flags[-1])
@pytest.mark.parametrize("flag_index", [0, -1], ids=["first-flag", "last-flag"])
def test_option_works_before_and_after_the_command(command: str, option: Option,
                                                   flag_index: int) -> None:
    follow, expected = SAMPLES[option.dest]
    given = [option.flags[flag_index], *follow]
    before = parse([*given, *COMMANDS[command]])
    after = parse([*COMMANDS[command], *given])
    assert getattr(before, option.dest) == expected
    assert getattr(after, option.dest) == expected
    assert expected != option.default
    assert getattr(parse(COMMANDS[command]), option.dest) == option.default


def test_after_the_command_wins() -> None:
    args = parse(["--url", "mqtt://first", "health", "--url", "mqtt://second"])
    assert args.url == "mqtt://second"


def test_url_before_the_command_reaches_that_broker(
        url: str, make_client: Callable[..., MQTTClient],
        capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.pop("MQTT_URL")  # only the option says where the broker is
    live = make_client(heartbeat_interval=0.2)
    assert main(["--url", url, "health", "--wait", "0.2", "--stale-after", "5"]) == 0, \
        capsys.readouterr().err
    assert live.config.client_id in capsys.readouterr().out


def test_client_id_before_the_command_is_used(url: str, make_client: Callable[..., MQTTClient],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    inbox = Inbox()
    make_client().subscribe("opt/id", inbox, qos=1)
    assert main(["-i", "probe-7", "pub", "opt/id", "--data", "{}"]) == 0
    assert main(["pub", "opt/id", "--data", "{}", "--client-id", "probe-8"]) == 0
    assert inbox.wait_count(2, 5)
    assert [m.envelope.source for m in inbox.messages if m.envelope] == ["probe-7", "probe-8"]


# the settings the options stand for ---------------------------------------------------------
def write(tmp_path: Path, name: str, text: str = "x\n") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_url_option_and_tls_ca_from_the_environment_are_checked_together(
        tmp_path: Path) -> None:
    ca = write(tmp_path, "ca.crt")
    config = config_for(parse(["--url", "mqtts://robot.local:8883", "health"]),
                        {"MQTT_TLS_CA": ca})
    assert (config.tls, config.tls_ca, config.port) == (True, ca, 8883)


def test_options_become_the_settings(tmp_path: Path) -> None:
    ca, cert, key = (write(tmp_path, n) for n in ("ca.crt", "me.crt", "me.key"))
    secret = write(tmp_path, "tools.password", "s3cret\n")
    args = parse(["sub", "#", "--url", "mqtts://robot.local", "--cafile", ca, "--cert", cert,
                  "--key", key, "--insecure", "-u", "tools", "--password-file", secret])
    config = config_for(args, {"MQTT_PASSWORD": "from-env", "MQTT_CLIENT_ID": "movement"})
    assert (config.tls_ca, config.tls_cert, config.tls_key, config.tls_insecure) == \
        (ca, cert, key, True)
    assert (config.username, config.password) == ("tools", "s3cret")
    assert config.client_id.startswith("tars-mqtt-cli-")  # never the service's
    assert not (config.enable_health or config.enable_heartbeat)
    assert "s3cret" not in repr(config)


def test_another_username_drops_the_environments_password(tmp_path: Path) -> None:
    env = {"MQTT_USERNAME": "tools", "MQTT_PASSWORD_FILE": write(tmp_path, "p", "pw\n")}
    same = config_for(parse(["health", "-u", "tools"]), env)
    other = config_for(parse(["health", "-u", "movement"]), env)
    assert (same.username, same.password) == ("tools", "pw")
    assert (other.username, other.password) == ("movement", None)


@pytest.mark.parametrize(("argv", "env", "says"), [
    (["--cafile", "/nowhere/ca.crt", "--url", "mqtts://h", "health"], {},
     "--cafile: file not found: /nowhere/ca.crt"),
    (["health", "--password-file", "/nowhere/pw"], {}, "--password-file: cannot read"),
    (["health", "--url", "mqtt://h", "--insecure"], {}, "--insecure: TLS settings given"),
    (["health", "--url", "mqtts://h"], {"MQTT_TLS_CA": "/nowhere/ca"},
     "MQTT_TLS_CA: file not found: /nowhere/ca"),
    (["health", "-i", "a/b"], {}, "--client-id: must be 1..128 characters"),
])
def test_a_bad_setting_is_named_where_it_came_from(argv: list[str], env: dict[str, str],
                                                  says: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
