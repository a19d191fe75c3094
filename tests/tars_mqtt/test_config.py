"""MQTTConfig: every variable, every rule, and the password kept out of sight."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from tars_mqtt import ConfigError, MQTTConfig, MQTTError

SECRET = "s3cr3t-Pa55"


def env(**values: str) -> dict[str, str]:
    """An environment with a client id, plus ``values`` under their MQTT_ names."""
    out = {"MQTT_CLIENT_ID": "robot"}
    out.update({f"MQTT_{name}": value for name, value in values.items()})
    return out


# Defaults and the variable -> field mapping -------------------------------------------
def test_defaults_are_the_documented_ones() -> None:
    cfg = MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": "robot"})
    assert (cfg.url, cfg.host, cfg.port, cfg.transport, cfg.tls) == (
        "mqtt://localhost:1883", "localhost", 1883, "tcp", False)
    assert cfg.client_id == "robot" and cfg.source == "robot"
    assert cfg.username is None and cfg.password is None
    assert (cfg.keepalive, cfg.protocol, cfg.clean_start, cfg.session_expiry) == (60, "5", None, 0)
    assert (cfg.starts_clean, cfg.receive_maximum, cfg.receive_window) == (True, 0, 1000)
    assert (cfg.workers, cfg.queue_size, cfg.queue_policy, cfg.offline_queue) == (
        4, 1000, "block", 1000)
    assert (cfg.reconnect_min_delay, cfg.reconnect_max_delay) == (0.5, 5.0)
    assert (cfg.enable_health, cfg.enable_heartbeat, cfg.heartbeat_interval) == (True, True, 5.0)
    assert (cfg.dedupe_ttl, cfg.dedupe_max_entries) == (0.0, 10000)
    assert (cfg.tls_ca, cfg.tls_cert, cfg.tls_key, cfg.tls_insecure) == (None, None, None, False)


def test_every_variable_reaches_its_field(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    for path in (ca, cert, key):
        path.write_text("x")
    cfg = MQTTConfig.from_env(environ=env(
        URL="mqtts://broker.local:8884", CLIENT_ID="movement", SOURCE_NAME="legs",
        USERNAME="robot", PASSWORD=SECRET, KEEPALIVE="30", PROTOCOL="3.1.1",
        CLEAN_START="false", SESSION_EXPIRY="600", WORKERS="8", QUEUE_SIZE="50",
        QUEUE_POLICY="drop_oldest", OFFLINE_QUEUE="0", RECONNECT_MIN_DELAY="0.25",
        RECONNECT_MAX_DELAY="9.5", ENABLE_HEALTH="no", ENABLE_HEARTBEAT="off",
        HEARTBEAT_INTERVAL="2.5", DEDUPE_TTL="30", DEDUPE_MAX_ENTRIES="77",
        TLS_CA=str(ca), TLS_CERT=str(cert), TLS_KEY=str(key), TLS_INSECURE="yes",
    ))
    assert (cfg.host, cfg.port, cfg.tls) == ("broker.local", 8884, True)
    assert (cfg.client_id, cfg.source) == ("movement", "legs")
    assert (cfg.username, cfg.password) == ("robot", SECRET)
    assert (cfg.keepalive, cfg.protocol, cfg.clean_start, cfg.session_expiry) == (
        30, "3.1.1", False, 600)
    assert (cfg.workers, cfg.queue_size, cfg.queue_policy, cfg.offline_queue) == (
        8, 50, "drop_oldest", 0)
    assert (cfg.reconnect_min_delay, cfg.reconnect_max_delay) == (0.25, 9.5)
    assert (cfg.enable_health, cfg.enable_heartbeat, cfg.heartbeat_interval) == (False, False, 2.5)
    assert (cfg.dedupe_ttl, cfg.dedupe_max_entries) == (30.0, 77)
    assert (cfg.tls_ca, cfg.tls_cert, cfg.tls_key, cfg.tls_insecure) == (
        str(ca), str(cert), str(key), True)


def test_source_name_variable_sets_the_envelope_source() -> None:
    """The variable is MQTT_SOURCE_NAME (as documented), not the field name in capitals."""
    assert MQTTConfig.from_env(environ=env(SOURCE_NAME="legs")).source == "legs"


def test_other_prefix_and_service_default_client_id() -> None:
    environ = {"TARS_URL": "mqtt://10.0.0.2", "TARS_WORKERS": "2"}
    cfg = MQTTConfig.from_env("TARS_", environ, client_id="wake")
    assert (cfg.client_id, cfg.host, cfg.workers) == ("wake", "10.0.0.2", 2)
    assert MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": "env-wins"},
                               client_id="default").client_id == "env-wins"


def test_blank_variables_mean_default() -> None:
    cfg = MQTTConfig.from_env(environ=env(WORKERS="  ", URL=""))
    assert cfg.workers == 4 and cfg.url == "mqtt://localhost:1883"


@pytest.mark.parametrize("spelling", ["5", "5.0", "v5", "3.1.1", "311"])
def test_protocol_spellings(spelling: str) -> None:
    expected = "5" if "5" in spelling else "3.1.1"
    assert MQTTConfig.from_env(environ=env(PROTOCOL=spelling)).protocol == expected


# URL schemes and credentials ------------------------------------------------------------
@pytest.mark.parametrize(("url", "port", "transport", "tls"), [
    ("mqtt://h", 1883, "tcp", False),
    ("mqtts://h", 8883, "tcp", True),
    ("ws://h", 80, "websockets", False),
    ("wss://h", 443, "websockets", True),
    ("mqtt://h:1999", 1999, "tcp", False),
    ("wss://h:9443/mqtt", 9443, "websockets", True),
])
def test_url_schemes(url: str, port: int, transport: str, tls: bool) -> None:
    cfg = MQTTConfig(url=url, client_id="c")
    assert (cfg.host, cfg.port, cfg.transport, cfg.tls) == ("h", port, transport, tls)


def test_websocket_path() -> None:
    assert MQTTConfig(url="ws://h/custom/path", client_id="c").ws_path == "/custom/path"
    assert MQTTConfig(url="ws://h", client_id="c").ws_path == "/mqtt"


def test_credentials_move_out_of_the_url() -> None:
    cfg = MQTTConfig(url=f"mqtt://robot%40home:{SECRET}%2F@broker:1884", client_id="c")
    assert cfg.username == "robot@home"
    assert cfg.password == SECRET + "/"
    assert cfg.url == "mqtt://broker:1884"
    assert SECRET not in cfg.url and "robot" not in cfg.url


def test_explicit_credentials_beat_the_url() -> None:
    cfg = MQTTConfig.from_env(environ=env(URL="mqtt://a:urlpass@h", USERNAME="b",
                                          PASSWORD=SECRET))
    assert (cfg.username, cfg.password) == ("b", SECRET)


def test_password_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "mqtt-password"
    secret_file.write_text(SECRET + "\n")
    cfg = MQTTConfig.from_env(environ=env(USERNAME="robot", PASSWORD_FILE=str(secret_file)))
    assert (cfg.username, cfg.password) == ("robot", SECRET)


def test_password_variable_beats_password_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "mqtt-password"
    secret_file.write_text("from-file")
    cfg = MQTTConfig.from_env(environ=env(PASSWORD=SECRET, PASSWORD_FILE=str(secret_file)))
    assert cfg.password == SECRET


def test_missing_password_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"^MQTT_PASSWORD_FILE: cannot read .*nope"):
        MQTTConfig.from_env(environ=env(PASSWORD_FILE=str(missing)))


# Booleans -------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["1", "true", "TRUE", "True", "yes", "YES", "on", "On"])
def test_true_spellings(word: str) -> None:
    cfg = MQTTConfig.from_env(environ=env(CLEAN_START=word, ENABLE_HEALTH=word))
    assert cfg.clean_start is True and cfg.enable_health is True


@pytest.mark.parametrize("word", ["0", "false", "FALSE", "False", "no", "NO", "off", "Off"])
def test_false_spellings(word: str) -> None:
    cfg = MQTTConfig.from_env(environ=env(CLEAN_START=word, ENABLE_HEARTBEAT=word))
    assert cfg.clean_start is False and cfg.enable_heartbeat is False


@pytest.mark.parametrize("word", ["maybe", "2", "y", "tru", "enabled"])
def test_other_words_are_not_booleans(word: str) -> None:
    with pytest.raises(ConfigError, match=r"^MQTT_TLS_INSECURE: must be one of 1/0, true/false"):
        MQTTConfig.from_env(environ=env(TLS_INSECURE=word))


# Every rule, through the environment (names the variable) -------------------------------
@pytest.mark.parametrize(("var", "value", "rule"), [
    ("KEEPALIVE", "0", "must be 1..3600 s"),
    ("KEEPALIVE", "3601", "must be 1..3600 s"),
    ("KEEPALIVE", "sixty", "must be a whole number"),
    ("KEEPALIVE", "1.5", "must be a whole number"),
    ("SESSION_EXPIRY", "-1", "must be 0..4.29497e\\+09 s"),
    ("WORKERS", "0", "must be 1..64"),
    ("WORKERS", "65", "must be 1..64"),
    ("QUEUE_SIZE", "0", "must be 1..1e\\+06"),
    ("QUEUE_SIZE", "1000001", "must be 1..1e\\+06"),
    ("OFFLINE_QUEUE", "-1", "must be 0..1e\\+06"),
    ("RECONNECT_MIN_DELAY", "-0.1", "must be 0..3600 s"),
    ("RECONNECT_MAX_DELAY", "fast", "must be a number"),
    ("HEARTBEAT_INTERVAL", "0.05", "must be 0.1..86400 s"),
    ("DEDUPE_TTL", "-1", "must be 0..86400 s"),
    ("DEDUPE_MAX_ENTRIES", "0", "must be 1..1e\\+07"),
    ("PROTOCOL", "4", "must be '5' or '3.1.1'"),
    ("QUEUE_POLICY", "drop_all", "must be block, drop_oldest or drop_newest"),
    ("CLIENT_ID", "a/b", "without / \\+ #"),
    ("CLIENT_ID", "a+b", "without / \\+ #"),
    ("CLIENT_ID", "a#b", "without / \\+ #"),
    ("CLIENT_ID", "x" * 129, "must be 1..128 characters"),
    ("URL", "http://h", "scheme must be mqtt, mqtts, ws or wss"),
    ("URL", "mqtt://", "needs a host"),
    ("URL", "mqtt://h:0", "port must be 1..65535"),
    ("URL", "mqtt://h:70000", "not a valid URL"),
    ("URL", "mqtt://h:port", "not a valid URL"),
])
def test_each_rule_names_the_variable(var: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"^MQTT_{var}: .*{rule}") as caught:
        MQTTConfig.from_env(environ=env(**{var: value}))
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, MQTTError)


def test_client_id_is_required() -> None:
    with pytest.raises(ConfigError, match=r"^MQTT_CLIENT_ID: required"):
        MQTTConfig.from_env(environ={})
    with pytest.raises(ConfigError, match=r"^client_id: required"):
        MQTTConfig()


def test_client_id_limits_are_inclusive() -> None:
    assert MQTTConfig(client_id="x" * 128).client_id == "x" * 128
    assert MQTTConfig(client_id="x").client_id == "x"


def test_min_delay_above_max_delay() -> None:
    with pytest.raises(ConfigError, match=r"^MQTT_RECONNECT_MIN_DELAY: must be <= "):
        MQTTConfig.from_env(environ=env(RECONNECT_MIN_DELAY="6", RECONNECT_MAX_DELAY="5"))


@pytest.mark.parametrize(("fields", "rule"), [
    ({"workers": 0}, r"^workers: must be 1..64"),
    ({"workers": True}, r"^workers: must be a number"),
    ({"keepalive": "60"}, r"^keepalive: must be a number"),
    ({"queue_policy": "lifo"}, r"^queue_policy: must be block"),
    ({"protocol": "3"}, r"^protocol: must be '5' or '3.1.1'"),
    ({"url": "tcp://h"}, r"^url: scheme must be"),
])
def test_rules_apply_to_a_config_built_by_hand(fields: dict[str, Any], rule: str) -> None:
    with pytest.raises(ConfigError, match=rule) as caught:
        MQTTConfig(client_id="c", **fields)
    assert caught.value.field == rule[1:].split(":")[0]


def test_frozen_and_replace_rechecks() -> None:
    cfg = MQTTConfig(client_id="c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.workers = 8  # type: ignore[misc]
    assert cfg.replace(workers=8).workers == 8
    with pytest.raises(ConfigError, match="^workers"):
        cfg.replace(workers=100)


# TLS files ------------------------------------------------------------------------------
def test_tls_files_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^MQTT_TLS_CA: file not found: .*ca.pem"):
        MQTTConfig.from_env(environ=env(URL="mqtts://h", TLS_CA=str(tmp_path / "ca.pem")))
    (tmp_path / "cert.pem").write_text("x")
    with pytest.raises(ConfigError, match=r"^MQTT_TLS_KEY: file not found"):
        MQTTConfig.from_env(environ=env(URL="mqtts://h", TLS_CERT=str(tmp_path / "cert.pem"),
                                        TLS_KEY=str(tmp_path / "key.pem")))


def test_tls_ca_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^tls_ca: file not found"):
        MQTTConfig(url="mqtts://h", client_id="c", tls_ca=str(tmp_path))


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match=r"^MQTT_TLS_CERT: tls_cert and tls_key go together"):
        MQTTConfig.from_env(environ=env(URL="mqtts://h", TLS_CERT=str(cert)))


def test_tls_settings_need_a_tls_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ConfigError, match=r"not mqtts:// or wss://"):
        MQTTConfig(url="mqtt://h", client_id="c", tls_ca=str(ca))
    with pytest.raises(ConfigError, match=r"not mqtts:// or wss://"):
        MQTTConfig(url="ws://h", client_id="c", tls_insecure=True)
    assert MQTTConfig(url="wss://h", client_id="c", tls_ca=str(ca)).tls_ca == str(ca)


# The password stays out of sight ---------------------------------------------------------
def test_password_masked_in_repr_and_str() -> None:
    cfg = MQTTConfig(url=f"mqtt://robot:{SECRET}@h", client_id="c")
    assert cfg.password == SECRET
    for text in (repr(cfg), str(cfg), f"{cfg}", f"{cfg!r}", repr([cfg])):
        assert SECRET not in text
        assert "password='***'" in text
    assert "password=None" in repr(MQTTConfig(client_id="c"))


def test_password_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    cfg = MQTTConfig(client_id="c", password=SECRET)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("tars_mqtt").info("config %s / %r", cfg, cfg)
    assert caplog.records and SECRET not in caplog.text


@pytest.mark.parametrize(("url", "extra"), [
    (f"http://robot:{SECRET}@h", {}),
    (f"mqtt://robot:{SECRET}@", {}),
    (f"mqtt://robot:{SECRET}@h:0", {}),
    (f"mqtt://robot:{SECRET}@h:99999", {}),
    (f"mqtt://robot:{SECRET}@h", {"workers": 0}),
    (f"mqtt://robot:{SECRET}@h", {"client_id": "bad/id"}),
    (f"mqtt://robot:{SECRET}@h", {"tls_insecure": True}),
])
def test_password_never_in_errors(url: str, extra: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"client_id": "c", **extra}
    with pytest.raises(ConfigError) as caught:
        MQTTConfig(url=url, **fields)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert caught.value.__cause__ is None or SECRET not in str(caught.value.__cause__)


def test_password_never_in_env_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        MQTTConfig.from_env(environ=env(URL=f"mqtts://robot:{SECRET}@h", WORKERS="x",
                                        PASSWORD=SECRET))
    assert "MQTT_WORKERS" in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        MQTTConfig.from_env(environ=env(URL=f"ftp://robot:{SECRET}@h"))
    assert "MQTT_URL" in str(caught.value) and SECRET not in str(caught.value)


# Hostile or broken settings ---------------------------------------------------------------
@pytest.mark.parametrize("password", ["pa#ss", "12/34", "p?x=1", "p@ss", "a:b", "#/?@:%zz"])
def test_url_password_may_hold_any_character_and_never_shows(password: str) -> None:
    """Unencoded ``#``, ``/``, ``?`` used to end the credentials early: the rest became
    the URL's fragment, path or query (shown in repr), or its host and port."""
    cfg = MQTTConfig.from_env(environ=env(URL=f"mqtt://robot:{password}@broker.local:1884"))
    assert (cfg.username, cfg.password, cfg.host, cfg.port) == (
        "robot", password, "broker.local", 1884)
    assert password not in repr(cfg) and cfg.url == "mqtt://broker.local:1884"


@pytest.mark.parametrize("url", ["mqtt://robot:S3CRET#x@h:port", "mqtt://robot:S3CRET/x@",
                                 "mqtt://robot:S3CRET?x@h:0", "ftp://robot:S3CRET#x@h"])
def test_url_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MQTTConfig.from_env(environ=env(URL=url))
    assert str(caught.value).startswith("MQTT_URL: ")
    assert "S3CRET" not in str(caught.value)


@pytest.mark.parametrize("var", ["CLIENT_ID", "SOURCE_NAME", "USERNAME", "PASSWORD", "URL"])
def test_undecodable_bytes_in_a_variable_name_it(var: str) -> None:
    """os.environ keeps undecodable bytes as lone surrogates; paho would fail on them later
    with a bare UnicodeError. Secrets are not echoed."""
    raw = b"robot\xff".decode("utf-8", "surrogateescape")
    value = f"mqtt://{raw}" if var == "URL" else raw
    with pytest.raises(ConfigError, match=rf"^MQTT_{var}: must be valid UTF-8 text") as caught:
        MQTTConfig.from_env(environ={**env(), f"MQTT_{var}": value})
    if var in ("USERNAME", "PASSWORD", "URL"):
        assert "robot" not in str(caught.value)


def test_undecodable_password_file_names_the_variable(tmp_path: Path) -> None:
    secret = tmp_path / "movement.password"
    secret.write_bytes(b"s3cr\xffet\n")
    with pytest.raises(ConfigError, match=r"^MQTT_PASSWORD_FILE: .* is not UTF-8 text") as caught:
        MQTTConfig.from_env(environ=env(PASSWORD_FILE=str(secret)))
    assert "s3cr" not in str(caught.value)


@pytest.mark.parametrize("var", ["TLS_INSECURE", "TLS_CA"])
def test_tls_setting_without_tls_url_names_itself(var: str, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    value = "true" if var == "TLS_INSECURE" else str(ca)
    with pytest.raises(ConfigError, match=rf"^MQTT_{var}: TLS settings given but"):
        MQTTConfig.from_env(environ=env(**{var: value}))


def test_session_expiry_alone_keeps_the_session() -> None:
    assert MQTTConfig(client_id="c").starts_clean
    assert not MQTTConfig(client_id="c", session_expiry=3600).starts_clean
    assert MQTTConfig(client_id="c", session_expiry=3600, clean_start=True).starts_clean
    assert not MQTTConfig(client_id="c", clean_start=False).starts_clean
    cfg = MQTTConfig.from_env(environ=env(SESSION_EXPIRY="600", CLEAN_START="yes"))
    assert cfg.starts_clean and cfg.clean_start is True


def test_defaults_of_a_service_give_way_to_variables() -> None:
    mine = {"session_expiry": 3600, "workers": 2}
    cfg = MQTTConfig.from_env(environ=env(WORKERS="8"), defaults=mine)
    assert (cfg.session_expiry, cfg.workers, cfg.starts_clean) == (3600, 8, False)
    assert MQTTConfig.from_env(environ=env(SESSION_EXPIRY="0"), defaults=mine).starts_clean


@pytest.mark.parametrize(("policy", "receive_maximum", "window"), [
    ("block", 0, 1000), ("drop_oldest", 0, 65535), ("drop_newest", 0, 65535),
    ("block", 7, 7), ("drop_oldest", 7, 7),
])
def test_receive_window(policy: str, receive_maximum: int, window: int) -> None:
    cfg = MQTTConfig(client_id="c", queue_policy=policy,  # type: ignore[arg-type]
                     receive_maximum=receive_maximum)
    assert cfg.receive_window == window
    assert MQTTConfig(client_id="c", queue_size=100_000).receive_window == 65535
