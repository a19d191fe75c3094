"""The PCA9685 driver against a simulated register map: what reaches the chip, and when.

Hardware facts: 25 MHz oscillator, 4096 counts per frame; PRE_SCALE 121 gives 50 Hz
(50.03 Hz), one count is (121 + 1) / 25 MHz = 4.88 µs.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import pytest

from hw import HardwareError
from hw.pca9685 import PCA9685, open_i2c_bus, prescale_for, pulse_count
from hw.testing import MockI2CBus, SimulatedPCA9685, Write
from tars_mqtt.timing import ManualClock

MODE1, MODE2, PRE_SCALE, ALL_LED_OFF_H = 0x00, 0x01, 0xFE, 0xFD
TICK = 122 / 25e6


def board(bus: MockI2CBus, clock: ManualClock, **kw: Any) -> PCA9685:
    return PCA9685(bus, clock=clock, **kw)


# --- the arithmetic ----------------------------------------------------------------------

@pytest.mark.parametrize(("hz", "prescale"), [(50, 121), (60, 101), (200, 30), (1526, 3)])
def test_prescale_for_a_frequency(hz: float, prescale: int) -> None:
    assert prescale_for(hz) == prescale


@pytest.mark.parametrize("hz", [10, 2000])
def test_frequency_the_chip_cannot_make_is_refused(hz: float) -> None:
    with pytest.raises(ValueError, match="outside 3..255"):
        prescale_for(hz)


@pytest.mark.parametrize(("ms", "count"), [(1.5, 307), (1.0, 205), (2.0, 410), (0.5, 102),
                                           (2.5, 512)])
def test_pulse_at_50_hz_is_an_off_count(ms: float, count: int) -> None:
    assert pulse_count(ms / 1000, prescale=121) == count


def test_pulse_count_stays_within_a_frame() -> None:
    assert pulse_count(0.0, 121) == 1  # ON == OFF would be no pulse at all
    assert pulse_count(0.05, 121) == 4095


# --- start-up ----------------------------------------------------------------------------

def test_power_on_chip_is_set_to_50_hz_through_sleep_and_restart(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    assert chip.asleep and chip.prescale == 30  # power-on: asleep, 200 Hz
    pca = board(bus, clock)
    assert chip.writes == [
        Write(0.0, MODE2, 0x04),  # totem-pole outputs
        Write(0.0, MODE1, 0x11),  # SLEEP (ALLCALL kept): PRE_SCALE may be written
        Write(0.0, PRE_SCALE, 121),
        Write(0.0, MODE1, 0x21),  # awake, auto-increment
        Write(0.0005, MODE1, 0xA1),  # RESTART, 500 µs later on the injected clock
    ]
    assert clock.steps == 1  # the only wait, and no real time passed
    assert chip.faults == []
    assert not chip.asleep and chip.frequency == pytest.approx(50.03, abs=0.01)
    assert pca.prescale == 121 and pca.frequency == pytest.approx(chip.frequency)
    assert all(chip.pulse_width(ch) is None for ch in range(16))  # nothing pulses yet


def test_channels_a_previous_run_left_pulsing_keep_pulsing(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    first = board(bus, clock)
    first.set_pulse(0, 0.0015)
    second = board(bus, clock)  # a restarted service: sleep, prescale, wake, restart
    assert chip.faults == []
    assert chip.pulse_width(0) == pytest.approx(307 * TICK)  # the servo held its pose
    second.set_pulse(0, 0.001)
    assert chip.counts(0) == (0, 205)


def test_the_simulation_catches_a_driver_that_skips_the_rules(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    bus.write_byte_data(0x40, MODE1, 0x21)  # awake ...
    bus.write_byte_data(0x40, PRE_SCALE, 121)  # ... so this is ignored
    bus.write_byte_data(0x40, MODE1, 0xA1)  # and no 500 µs passed
    assert chip.prescale == 30
    assert chip.faults == ["PRE_SCALE written while awake: the chip ignores it",
                           "RESTART written 0 µs after SLEEP was cleared (the oscillator "
                           "needs 500 µs)"]


# --- pulses ------------------------------------------------------------------------------

def test_1_5_ms_pulse_at_50_hz_is_off_count_307(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    pca = board(bus, clock)
    pca.set_pulse(3, 0.0015)
    assert chip.writes[-4:] == [Write(0.0005, 0x12, 0), Write(0.0005, 0x13, 0),  # LED3_ON
                                Write(0.0005, 0x14, 307 & 0xFF), Write(0.0005, 0x15, 1)]
    assert chip.counts(3) == (0, 307)
    assert chip.pulse_width(3) == pytest.approx(0.0015, abs=TICK / 2)
    assert chip.pulse_width(2) is None and chip.pulse_width(4) is None  # neighbours untouched


def test_off_stops_the_pulses_until_the_next_one(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    pca = board(bus, clock)
    pca.set_pulse(15, 0.002)
    pca.off(15)
    assert chip.fully_off(15) and chip.pulse_width(15) is None
    pca.set_pulse(15, 0.002)
    assert chip.counts(15) == (0, 410) and not chip.fully_off(15)


def test_close_turns_every_output_off_and_sleeps(
        bus: MockI2CBus, chip: SimulatedPCA9685, clock: ManualClock) -> None:
    pca = board(bus, clock)
    for channel in (0, 7, 15):
        pca.set_pulse(channel, 0.0015)
    pca.close()
    pca.close()  # idempotent: nothing more is written
    assert chip.writes[-2:] == [Write(0.0005, ALL_LED_OFF_H, 0x10), Write(0.0005, MODE1, 0x31)]
    assert all(chip.fully_off(ch) for ch in range(16))
    assert chip.asleep and chip.faults == []
    assert not bus.closed  # the bus belongs to whoever opened it
    with pytest.raises(HardwareError, match="PCA9685 on I2C bus 1 at 0x40 is closed"):
        pca.set_pulse(0, 0.0015)


def test_no_such_channel(bus: MockI2CBus, clock: ManualClock) -> None:
    with pytest.raises(HardwareError, match="at 0x40: no channel 16 "):
        board(bus, clock).set_pulse(16, 0.0015)


# --- bus errors --------------------------------------------------------------------------

def test_no_chip_at_the_address_names_bus_and_address(bus: MockI2CBus,
                                                     clock: ManualClock) -> None:
    with pytest.raises(HardwareError, match=r"PCA9685 on I2C bus 1 at 0x41 does not answer "
                                            r"\(check .*address jumpers\): \[Errno 121\]"
                                            ) as info:
        board(bus, clock, address=0x41)
    assert isinstance(info.value.__cause__, OSError)


def test_a_failing_bus_names_the_channel(bus: MockI2CBus, clock: ManualClock) -> None:
    pca = board(bus, clock, bus_number=3)
    bus.fail = OSError(errno.EIO, "Input/output error")
    with pytest.raises(HardwareError, match=r"PCA9685 on I2C bus 3 at 0x40, channel 5: cannot "
                                            r"set the pulse: \[Errno 5\] Input/output error"):
        pca.set_pulse(5, 0.0015)
    with pytest.raises(HardwareError, match="channel 5: cannot turn it off"):
        pca.off(5)
    with pytest.raises(HardwareError, match="at 0x40: cannot turn every output off"):
        pca.close()
    assert pca.closed


def test_missing_bus_device_names_it() -> None:
    with pytest.raises(HardwareError, match=r"cannot open I2C bus 99 \(/dev/i2c-99\): .*"
                                            r"enable I2C"):
        open_i2c_bus(99)


def test_missing_smbus2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smbus2", None)  # makes the import fail
    with pytest.raises(HardwareError, match=r"pip install 'tars-mqtt\[pca9685\]'"):
        open_i2c_bus(1)
