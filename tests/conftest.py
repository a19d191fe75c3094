"""Shared fixtures: a real mosquitto per test and clients that are always stopped."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from tars_mqtt import MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker
from tests.hw.support import RecordingPWMPin

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

_ids = itertools.count(1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free 127.0.0.1 port, stopped after the test."""
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def make_config(broker: Broker, request: pytest.FixtureRequest) -> Callable[..., MQTTConfig]:
    """``make_config(**fields)``: a config for the test broker with a unique client id."""
    def make(**fields: Any) -> MQTTConfig:
        fields.setdefault("url", broker.url)
        fields.setdefault("client_id", f"t{next(_ids)}-{request.node.name[:40]}".replace("[", "-")
                          .replace("]", "").replace("/", "-").replace("+", "p").replace("#", "h"))
        fields.setdefault("reconnect_min_delay", 0.1)
        fields.setdefault("reconnect_max_delay", 0.5)
        return MQTTConfig(**fields)
    return make


@pytest.fixture
def make_client(make_config: Callable[..., MQTTConfig]) -> Iterator[Callable[..., MQTTClient]]:
    """``make_client(start=True, **fields)``: a client that is stopped after the test."""
    clients: list[MQTTClient] = []

    def make(start: bool = True, **fields: Any) -> MQTTClient:
        client = MQTTClient(make_config(**fields))
        clients.append(client)
        if start:
            client.start(timeout=10)
        return client

    yield make
    for client in clients:
        client.stop(timeout=2)


@pytest.fixture
def factory() -> Iterator[Any]:
    """A fresh mock pin factory per test (PWM pins that record their values)."""
    f = MockFactory(pin_class=RecordingPWMPin)
    yield f
    f.close()
    f.reset()
