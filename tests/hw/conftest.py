"""Fixtures for the hardware tests: ``factory`` (a fresh mock pin factory per test,
never the global) comes from tests/conftest.py, shared with the service tests; here
are a manual clock and a simulated PCA9685 at 0x40 on a mock I2C bus that uses it."""

from __future__ import annotations

import pytest

from hw.testing import MockI2CBus, SimulatedPCA9685
from tars_mqtt.timing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def chip(clock: ManualClock) -> SimulatedPCA9685:
    """A power-on PCA9685 whose write log is timed by ``clock``."""
    return SimulatedPCA9685(clock=clock)


@pytest.fixture
def bus(chip: SimulatedPCA9685) -> MockI2CBus:
    """I2C bus with ``chip`` at 0x40 (no jumpers bridged) and nothing else."""
    return MockI2CBus({0x40: chip})
