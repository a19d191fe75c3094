"""What the ``tars-mqtt`` tests share: a clean MQTT_* environment, the broker's URL."""

from __future__ import annotations

import os

import pytest

from tars_mqtt.testing import Broker

__all__ = ["no_env_broker", "one_error_line", "url"]


@pytest.fixture(autouse=True)
def no_env_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own MQTT_* settings must not leak into what the tests check."""
    for name in list(os.environ):
        if name.startswith("MQTT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def url(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test broker's URL, also as MQTT_URL (what the command reads by default)."""
    monkeypatch.setenv("MQTT_URL", broker.url)
    return broker.url


def one_error_line(err: str) -> str:
    """The command's one line on stderr (it must be exactly one)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith("tars-mqtt: error: ")
    return lines[0]
