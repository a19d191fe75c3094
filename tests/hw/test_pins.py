"""Pin factory: gpiozero's own choice (argument > Device.pin_factory > $GPIOZERO_PIN_FACTORY),
plus PWM-capable mock pins and an error that names the variable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockChargingPin, MockFactory, MockPWMPin

from hw import HardwareError, Joint, PinFactoryError, default_pin_factory

from .support import joint_cal


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No process-wide factory yet (restored afterwards); closes whatever gets made."""
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.delenv("GPIOZERO_MOCK_PIN_CLASS", raising=False)
    yield monkeypatch
    if Device.pin_factory is not None:
        Device.pin_factory.close()


def test_default_is_gpiozeros_own_factory_with_pwm_mock_pins(fresh: Any) -> None:
    fresh.setenv("GPIOZERO_PIN_FACTORY", "mock")
    factory = default_pin_factory()
    assert factory is Device.pin_factory  # gpiozero made it, from its own variable
    assert isinstance(factory, MockFactory) and factory.pin_class is MockPWMPin
    assert default_pin_factory() is factory  # shared by every driver in the process
    with Joint(joint_cal(pin=12)):  # no pin_factory: the shared one
        assert factory.pin(12).frequency == 50
        assert factory.pin(12).state == pytest.approx(0.075)  # neutral 0 -> 1.5 ms


def test_gpiozeros_mock_pin_class_variable_is_honoured(fresh: Any) -> None:
    fresh.setenv("GPIOZERO_PIN_FACTORY", "mock")
    fresh.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockchargingpin")
    assert default_pin_factory().pin_class is MockChargingPin


def test_a_factory_set_on_device_is_used_as_is(fresh: Any, factory: Any) -> None:
    fresh.setenv("GPIOZERO_PIN_FACTORY", "bogus")  # not even looked at
    Device.pin_factory = factory
    assert default_pin_factory() is factory


def test_argument_beats_everything(fresh: Any, factory: Any) -> None:
    fresh.setenv("GPIOZERO_PIN_FACTORY", "bogus")
    with Joint(joint_cal(pin=12), pin_factory=factory):
        assert factory.pin(12).state == pytest.approx(0.075)
    assert Device.pin_factory is None  # the process-wide factory was never needed


def test_unknown_name_is_an_error_naming_the_variable(fresh: Any) -> None:
    fresh.setenv("GPIOZERO_PIN_FACTORY", "bogus")
    with pytest.raises(PinFactoryError, match=r"GPIOZERO_PIN_FACTORY='bogus'.*'bogus'"):
        default_pin_factory()
    with pytest.raises(HardwareError, match="GPIOZERO_PIN_FACTORY='bogus'"):
        Joint(joint_cal(pin=12))
    assert issubclass(PinFactoryError, ValueError)
    assert Device.pin_factory is None
