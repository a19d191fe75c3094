"""tars_mqtt.settings: one parser for every MQTT_* and TARS_* value, errors naming the variable."""

from __future__ import annotations

import pytest

from tars_mqtt import ConfigError
from tars_mqtt.settings import env_bool, env_float, env_int, env_text


def test_unset_or_blank_gives_the_default() -> None:
    assert env_float({}, "TARS_X", 1.5) == 1.5
    assert env_int({"TARS_X": "  "}, "TARS_X", 3) == 3
    assert env_bool({"TARS_X": ""}, "TARS_X", True) is True
    assert env_text({"TARS_X": " "}, "TARS_X") is None


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("Yes", True), ("off", False),
                                            ("FALSE", False)])
def test_booleans(raw: str, value: bool) -> None:
    assert env_bool({"TARS_X": raw}, "TARS_X", not value) is value


def test_numbers_in_range() -> None:
    assert env_float({"TARS_X": " 2.5 "}, "TARS_X", 0.0, low=1, high=3) == 2.5
    assert env_int({"TARS_X": "7"}, "TARS_X", 0, high=10) == 7


@pytest.mark.parametrize(("call", "raw", "rule"), [
    (lambda env: env_float(env, "TARS_X", 1.0), "soon", "must be a number"),
    (lambda env: env_float(env, "TARS_X", 1.0), "nan", "finite"),
    (lambda env: env_float(env, "TARS_X", 1.0, high=1e300), "inf", "finite"),
    (lambda env: env_float(env, "TARS_X", 1.0, low=1), "0.5", "from 1 to"),
    (lambda env: env_int(env, "TARS_X", 1), "1.5", "whole number"),
    (lambda env: env_int(env, "TARS_X", 1, high=27), "28", "from 0 to 27"),
    (lambda env: env_bool(env, "TARS_X", True), "maybe", "1/0, true/false"),
    (lambda env: env_text(env, "TARS_X"), "caf\udce9", "not valid UTF-8"),
])
def test_a_bad_value_names_the_variable_and_the_rule(call: object, raw: str, rule: str) -> None:
    with pytest.raises(ConfigError) as info:
        call({"TARS_X": raw})  # type: ignore[operator]
    assert str(info.value).startswith("TARS_X: ") and rule in str(info.value)
