"""Several brokers in one MQTT_URL: the list, each broker's credentials and TLS, the checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tars_mqtt import ConfigError, MQTTConfig

SECRET = "s3cr3t-Pa55"


def _env(**values: str) -> dict[str, str]:
    return {"MQTT_CLIENT_ID": "robot", **{f"MQTT_{k}": v for k, v in values.items()}}


@pytest.mark.parametrize("text", [
    "mqtt://a:1883,mqtt://b:1884",
    "mqtt://a:1883, mqtt://b:1884",
    "  mqtt://a:1883   mqtt://b:1884 ",
    "mqtt://a:1883,\n mqtt://b:1884",
])
def test_commas_or_spaces_separate_the_brokers(text: str) -> None:
    cfg = MQTTConfig.from_env(environ=_env(URL=text))
    assert cfg.url == "mqtt://a:1883,mqtt://b:1884"
    assert [(b.host, b.port) for b in cfg.brokers] == [("a", 1883), ("b", 1884)]
    assert (cfg.host, cfg.port) == ("a", 1883)  # the first broker's


def test_one_url_is_its_own_only_broker() -> None:
    cfg = MQTTConfig(url="mqtt://a:1883", client_id="c")
    assert cfg.brokers == (cfg,)


def test_each_url_keeps_its_own_credentials_out_of_sight() -> None:
    cfg = MQTTConfig(url=f"mqtt://one:{SECRET}@a,mqtt://b,mqtts://two:pw,x@c", client_id="c")
    assert [(b.username, b.password) for b in cfg.brokers] == [
        ("one", SECRET), (None, None), ("two", "pw,x")]  # a comma in a password stays
    assert cfg.url == "mqtt://a,mqtt://b,mqtts://c"
    assert SECRET not in repr(cfg) and SECRET not in repr(cfg.brokers)
    again = cfg.replace(workers=8)  # a copy keeps them, though url shows none
    assert [(b.username, b.password) for b in again.brokers] == [
        ("one", SECRET), (None, None), ("two", "pw,x")]


def test_the_variables_win_over_every_urls_credentials() -> None:
    cfg = MQTTConfig.from_env(environ=_env(URL="mqtt://u:p@a,mqtt://b", USERNAME="tars",
                                           PASSWORD=SECRET))
    assert {(b.username, b.password) for b in cfg.brokers} == {("tars", SECRET)}


def test_shared_tls_settings_go_to_the_tls_urls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    cfg = MQTTConfig.from_env(environ=_env(URL="mqtt://a,mqtts://b", TLS_CA=str(ca)))
    plain, tls = cfg.brokers
    assert (plain.tls, plain.tls_ca) == (False, None)
    assert (tls.tls, tls.tls_ca) == (True, str(ca))


def test_a_url_names_its_own_tls_files(tmp_path: Path) -> None:
    ca = tmp_path / "b-ca.crt"
    ca.write_text("x")
    cfg = MQTTConfig(url=f"mqtts://a,mqtts://b?tls_ca={ca}&tls_insecure=true", client_id="c")
    first, second = cfg.brokers
    assert (first.tls_ca, first.tls_insecure) == (None, False)
    assert (second.tls_ca, second.tls_insecure, second.url) == (str(ca), True, "mqtts://b")


@pytest.mark.parametrize(("environ", "message"), [
    (_env(URL="mqtt://a,foo://b"), "MQTT_URL: scheme must be mqtt, mqtts, ws or wss"),
    (_env(URL="mqtt://a,mqtt://"), "MQTT_URL: needs a host"),
    (_env(URL="mqtt://a,mqtt://b", TLS_INSECURE="true"),
     "MQTT_TLS_INSECURE: TLS settings given but no URL of mqtt://a,mqtt://b is"),
    (_env(URL="mqtt://a,mqtt://b?tls_insecure=true"),
     "MQTT_URL: tls_insecure given in mqtt://b, which is not mqtts:// or wss://"),
    (_env(URL="mqtts://a,mqtts://b?tls_insecure=maybe"),
     "MQTT_URL: tls_insecure must be true or false, got 'maybe'"),
    (_env(URL="mqtts://a,mqtts://b?tls_ca=/nowhere/ca.crt"),
     "MQTT_TLS_CA: file not found: /nowhere/ca.crt"),
])
def test_a_bad_url_in_the_list_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("?", r"\?")):
        MQTTConfig.from_env(environ=environ)
