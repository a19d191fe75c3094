"""docs/configuration.md's table is the code's: fields, types, defaults, examples, ranges."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from tars_mqtt import ConfigError, MQTTConfig

from .support import ROOT, table

DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
ROWS = table(DOC, "variable")
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
FIELDS = {f.name: f for f in dataclasses.fields(MQTTConfig)}
HINTS = typing.get_type_hints(MQTTConfig)
# Settings that only make sense together with others (the rules say so).
CONTEXT = {
    "MQTT_TLS_CA": {"MQTT_URL": "mqtts://broker.test:8883"},
    "MQTT_TLS_CERT": {"MQTT_URL": "mqtts://broker.test:8883"},
    "MQTT_TLS_KEY": {"MQTT_URL": "mqtts://broker.test:8883"},
    "MQTT_TLS_INSECURE": {"MQTT_URL": "mqtts://broker.test:8883"},
    "MQTT_RECONNECT_MIN_DELAY": {"MQTT_RECONNECT_MAX_DELAY": "3600"},
    "MQTT_RECONNECT_MAX_DELAY": {"MQTT_RECONNECT_MIN_DELAY": "0"},
}


def code(cell: str) -> str:
    """The text of a cell that is one code span."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"expected one `code` span, got {cell!r}"
    return match.group(1)


def by_var() -> dict[str, dict[str, str]]:
    return {code(row["variable"]): row for row in ROWS}


def env_for(var: str, value: str, tmp_path: Path) -> dict[str, str]:
    env = {"MQTT_CLIENT_ID": "doc-test", **CONTEXT.get(var, {}), var: value}
    if var in ("MQTT_TLS_CERT", "MQTT_TLS_KEY"):  # they go together
        for other in ("MQTT_TLS_CERT", "MQTT_TLS_KEY"):
            env.setdefault(other, str(_file(tmp_path, other.lower())))
    return env


def _file(tmp_path: Path, name: str, text: str = "x\n") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def parse(kind: str, raw: str) -> Any:
    if kind == "bool":
        assert raw.lower() in TRUE | FALSE, raw
        return raw.lower() in TRUE
    return {"int": int, "float": float, "str": str, "path": str}[kind](raw)


def test_one_row_per_field_and_the_password_file() -> None:
    rows = by_var()
    assert len(rows) == len(ROWS), "a variable is listed twice"
    documented = {code(row["field"]) for row in ROWS}
    assert documented == set(FIELDS)
    assert code(rows["MQTT_PASSWORD_FILE"]["field"]) == "password"
    assert all(var.startswith("MQTT_") for var in rows)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["variable"].strip("`"))
def test_type_matches_the_annotation(row: dict[str, str]) -> None:
    name = code(row["field"])
    hint = HINTS[name]
    base = {typing.get_origin(hint) or hint} if not isinstance(hint, types.UnionType) else {
        a for a in typing.get_args(hint) if a is not type(None)}
    kind = row["type"]
    expected = {"bool": bool, "int": int, "float": float, "str": str, "path": str}[kind]
    if typing.get_origin(hint) is typing.Literal:  # queue_policy: a set of strings
        base = {type(v) for v in typing.get_args(hint)}
    assert base == {expected}, f"{name}: documented {kind}, annotated {hint}"
    if kind == "path":
        assert FIELDS[name].default is None or name == "password"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["variable"].strip("`"))
def test_default_is_the_code_default(row: dict[str, str], tmp_path: Path) -> None:
    var, name, cell = code(row["variable"]), code(row["field"]), row["default"]
    default = FIELDS[name].default
    if cell == "—":
        assert default is None
    elif cell == "required":
        assert default == ""
        with pytest.raises(ConfigError, match=var):
            MQTTConfig.from_env(environ={})
    elif cell == "the client id":
        assert default == ""
        assert MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": "abc"}).source == "abc"
    else:
        written = code(cell)
        assert parse(row["type"], written) == default
        # and the variable set to the documented default changes nothing
        plain = MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": "doc-test"})
        explicit = MQTTConfig.from_env(environ=env_for(var, written, tmp_path))
        assert getattr(explicit, name) == getattr(plain, name) == default


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["variable"].strip("`"))
def test_example_is_accepted_and_lands_in_its_field(row: dict[str, str],
                                                    tmp_path: Path) -> None:
    var, name, kind = code(row["variable"]), code(row["field"]), row["type"]
    example = code(row["example"])
    if kind == "path":  # the documented path, made to exist here
        assert example.startswith("/"), example
        example = str(_file(tmp_path, Path(example).name, "from-file\n"))
    config = MQTTConfig.from_env(environ=env_for(var, example, tmp_path))
    value = getattr(config, name)
    expected = "from-file" if var == "MQTT_PASSWORD_FILE" else parse(kind, example)
    assert value == expected, f"{var}={example!r} gave {name}={value!r}"
    assert value != FIELDS[name].default, f"{var}: the example should differ from the default"


_RANGE = re.compile(r"(\d+(?:\.\d+)?)\.\.(\d+(?:\.\d+)?)")
RANGED = [row for row in ROWS if row["type"] in ("int", "float") and _RANGE.search(row["rule"])]


def test_every_number_has_a_range() -> None:
    numbers = [row for row in ROWS if row["type"] in ("int", "float")]
    assert numbers and numbers == RANGED


@pytest.mark.parametrize("row", RANGED, ids=lambda r: r["variable"].strip("`"))
def test_range_ends_accepted_and_beyond_refused(row: dict[str, str], tmp_path: Path) -> None:
    var, kind = code(row["variable"]), row["type"]
    match = _RANGE.search(row["rule"])
    assert match is not None
    low, high = (parse(kind, x) for x in match.groups())
    step = 1 if kind == "int" else 0.001
    for good in (low, high):
        MQTTConfig.from_env(environ=env_for(var, str(good), tmp_path))
    for bad in (low - step, high + step):
        with pytest.raises(ConfigError) as info:
            MQTTConfig.from_env(environ=env_for(var, str(bad), tmp_path))
        assert str(info.value).startswith(f"{var}:"), str(info.value)


@pytest.mark.parametrize("row", [r for r in ROWS if r["rule"].startswith("one of")],
                         ids=lambda r: r["variable"].strip("`"))
def test_choices_accepted_and_others_refused(row: dict[str, str], tmp_path: Path) -> None:
    var, name = code(row["variable"]), code(row["field"])
    choices = re.findall(r"`([^`]+)`", row["rule"].split(":")[0].split("(")[0])
    assert len(choices) >= 2, row["rule"]
    for choice in choices:
        config = MQTTConfig.from_env(environ=env_for(var, choice, tmp_path))
        assert getattr(config, name) == choice
    with pytest.raises(ConfigError, match=f"^{var}:"):
        MQTTConfig.from_env(environ=env_for(var, "bogus", tmp_path))


@pytest.mark.parametrize("row", [r for r in ROWS if r["type"] == "bool"],
                         ids=lambda r: r["variable"].strip("`"))
def test_booleans_take_the_documented_words_only(row: dict[str, str], tmp_path: Path) -> None:
    var, name = code(row["variable"]), code(row["field"])
    for word in ("1", "TRUE", "Yes", "on"):
        assert getattr(MQTTConfig.from_env(environ=env_for(var, word, tmp_path)), name) is True
    for word in ("0", "False", "NO", "off"):
        assert getattr(MQTTConfig.from_env(environ=env_for(var, word, tmp_path)), name) is False
    with pytest.raises(ConfigError, match=f"^{var}:"):
        MQTTConfig.from_env(environ=env_for(var, "maybe", tmp_path))


def test_precedence_and_secrets_as_documented(tmp_path: Path) -> None:
    secret = _file(tmp_path, "pw", "from-file\n")
    env = {"MQTT_CLIENT_ID": "svc", "MQTT_URL": "mqtt://urluser:urlpass@127.0.0.1:1883"}
    from_url = MQTTConfig.from_env(environ=env)
    assert (from_url.username, from_url.password) == ("urluser", "urlpass")
    assert "urlpass" not in from_url.url and "urlpass" not in repr(from_url)
    assert "password='***'" in repr(from_url)
    env["MQTT_PASSWORD_FILE"] = str(secret)
    assert MQTTConfig.from_env(environ=env).password == "from-file"
    env.update(MQTT_PASSWORD="explicit", MQTT_USERNAME="explicit-user")
    both = MQTTConfig.from_env(environ=env)
    assert (both.username, both.password) == ("explicit-user", "explicit")
    assert MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": " ", "MQTT_KEEPALIVE": ""},
                               client_id="service-default").keepalive == 60
    assert MQTTConfig.from_env(environ={}, client_id="svc").client_id == "svc"
    assert MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": "env"},
                               client_id="svc").client_id == "env"
    other = MQTTConfig.from_env("BRIDGE_", environ={"BRIDGE_URL": "mqtt://h:1", "BRIDGE_CLIENT_ID":
                                                    "b"})
    assert (other.host, other.port, other.client_id) == ("h", 1, "b")


def test_client_id_rule() -> None:
    rule = by_var()["MQTT_CLIENT_ID"]["rule"]
    assert rule.startswith("1..128 characters, none of `/ + #`")
    MQTTConfig(client_id="x" * 128)
    for bad in ("x" * 129, "a/b", "a+b", "a#b"):
        with pytest.raises(ConfigError, match="^MQTT_CLIENT_ID:"):
            MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": bad})


@pytest.mark.parametrize(("alias", "protocol"), [("5.0", "5"), ("v5", "5"), ("311", "3.1.1")])
def test_protocol_aliases(alias: str, protocol: str) -> None:
    env = {"MQTT_CLIENT_ID": "x", "MQTT_PROTOCOL": alias}
    assert MQTTConfig.from_env(environ=env).protocol == protocol


@pytest.mark.parametrize(("url", "port", "transport", "tls", "path"), [
    ("mqtt://h", 1883, "tcp", False, "/mqtt"),
    ("mqtts://h", 8883, "tcp", True, "/mqtt"),
    ("ws://h", 80, "websockets", False, "/mqtt"),
    ("wss://h/broker", 443, "websockets", True, "/broker"),
])
def test_url_schemes_and_default_ports(url: str, port: int, transport: str, tls: bool,
                                       path: str) -> None:
    config = MQTTConfig(url=url, client_id="x")
    assert (config.port, config.transport, config.tls, config.ws_path) == (
        port, transport, tls, path)


def test_tls_files_refused_with_a_plain_url(tmp_path: Path) -> None:
    ca = _file(tmp_path, "ca.crt")
    with pytest.raises(ConfigError, match="MQTT_TLS_CA"):
        MQTTConfig.from_env(environ={"MQTT_CLIENT_ID": "x", "MQTT_TLS_CA": str(ca)})
