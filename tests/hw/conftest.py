"""Fixtures for the hardware tests: a fresh mock pin factory per test, never the global."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from .support import RecordingPWMPin


@pytest.fixture
def factory() -> Iterator[Any]:
    f = MockFactory(pin_class=RecordingPWMPin)
    yield f
    f.close()
    f.reset()
