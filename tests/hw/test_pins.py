"""Pin factory selection: argument > GPIOZERO_PIN_FACTORY > gpiozero's default."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

import hw.pins
from hw import HardwareError, Joint, PinFactoryError, default_pin_factory, make_pin_factory

from .support import joint_cal


def test_nothing_set_means_gpiozero_default() -> None:
    assert make_pin_factory(environ={}) is None
    assert make_pin_factory(environ={"GPIOZERO_PIN_FACTORY": "  "}) is None


@pytest.mark.parametrize("name", ["mock", "MOCK", " mock "])
def test_mock_from_environment_has_pwm_pins(name: str) -> None:
    factory = make_pin_factory(environ={"GPIOZERO_PIN_FACTORY": name})
    assert isinstance(factory, MockFactory)
    assert factory.pin_class is MockPWMPin


def test_argument_beats_environment() -> None:
    factory = make_pin_factory("mock", environ={"GPIOZERO_PIN_FACTORY": "bogus"})
    assert isinstance(factory, MockFactory)


def test_unknown_name_is_a_value_error_naming_it() -> None:
    with pytest.raises(PinFactoryError, match=r"unknown pin factory 'bogus' \(known: .*mock"):
        make_pin_factory(environ={"GPIOZERO_PIN_FACTORY": "bogus"})
    assert issubclass(PinFactoryError, ValueError)
    assert issubclass(PinFactoryError, HardwareError)


def test_mock_factory_drives_a_servo() -> None:
    factory = make_pin_factory("mock")
    assert factory is not None
    with Joint(joint_cal(pin=12), pin_factory=factory) as joint:
        joint.set_angle(90)
        assert factory.pin(12).state == pytest.approx(0.10)


def test_default_factory_is_shared_within_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setattr(hw.pins, "_shared", None)
    first = default_pin_factory()
    assert isinstance(first, MockFactory)
    assert default_pin_factory() is first
