"""The PCA9685: a 16-channel, 12-bit I2C PWM chip that times servo pulses in hardware.

A Pi times gpiozero's servo pulses in software, so they jitter; the PCA9685 counts every
pulse from its own 25 MHz oscillator, 4096 counts per frame. The register facts below are
from NXP's datasheet (section 7.3): ``PRE_SCALE`` can only be written while ``MODE1``'s
SLEEP bit is set; after SLEEP is cleared the oscillator needs 500 µs before ``RESTART``
may be written; a channel is four registers ``LEDn_ON_L/H``, ``LEDn_OFF_L/H`` from
``0x06 + 4 n``, and bit 4 of ``LEDn_OFF_H`` turns it fully off.

Only this module talks to the chip; it needs just four calls of an smbus2 ``SMBus``
(:class:`I2CBus`), so :class:`hw.testing.MockI2CBus` can stand in for one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from tars_mqtt.timing import Clock, MonotonicClock

from .errors import HardwareError

__all__ = [
    "CHANNELS",
    "DEFAULT_ADDRESS",
    "I2CBus",
    "OSCILLATOR_HZ",
    "PCA9685",
    "open_i2c_bus",
    "prescale_for",
    "pulse_count",
]

# Registers
MODE1 = 0x00
MODE2 = 0x01
LED0_ON_L = 0x06  # channel n: LED0_ON_L + 4 n .. + 3 (ON_L, ON_H, OFF_L, OFF_H)
ALL_LED_ON_L = 0xFA  # write-only: loads every channel's four registers
ALL_LED_OFF_H = 0xFD
PRE_SCALE = 0xFE
# MODE1 bits
RESTART = 0x80
EXTCLK = 0x40
AI = 0x20  # auto-increment: a block write fills consecutive registers
SLEEP = 0x10
ALLCALL = 0x01
# MODE2 bits
OUTDRV = 0x04  # totem-pole outputs: what servo boards wire straight to the signal pin
# LEDn_ON_H / LEDn_OFF_H bit 4: fully on / fully off (off wins)
FULL = 0x10

CHANNELS = 16
COUNTS = 4096  # per PWM frame
OSCILLATOR_HZ = 25_000_000  # the internal oscillator, nominal
OSCILLATOR_SETTLE = 0.0005  # seconds SLEEP must be clear before RESTART is written
PRESCALE_RANGE = (3, 255)  # 1526 Hz .. 24 Hz
DEFAULT_ADDRESS = 0x40  # 0x40 + the A0..A5 jumpers
ALL_CALL_ADDRESS = 0x70  # every PCA9685 on the bus answers here after power-on
ADDRESS_RANGE = (0x40, 0x7F)


def prescale_for(frequency: float, oscillator_hz: float = OSCILLATOR_HZ) -> int:
    """``PRE_SCALE`` for a PWM frequency: ``round(osc / (4096 f)) - 1``; 50 Hz -> 121.

    Raises:
        ValueError: the frequency is outside what the chip can do (24..1526 Hz).
    """
    value = round(oscillator_hz / (COUNTS * frequency)) - 1
    lo, hi = PRESCALE_RANGE
    if not lo <= value <= hi:
        raise ValueError(f"PWM frequency {frequency:g} Hz needs PRE_SCALE {value}, "
                         f"outside {lo}..{hi}")
    return value


def pulse_count(width: float, prescale: int, oscillator_hz: float = OSCILLATOR_HZ) -> int:
    """The ``LEDn_OFF`` count that ends a pulse of ``width`` seconds begun at count 0.

    One count lasts ``(prescale + 1) / osc``: 4.88 µs at 50 Hz, so 1.5 ms -> 307. Kept
    within 1..4095, because ON == OFF would mean no pulse at all.
    """
    count = round(width * oscillator_hz / (prescale + 1))
    return min(max(count, 1), COUNTS - 1)


class I2CBus(Protocol):
    """What the driver needs of an open I2C bus: smbus2's ``SMBus`` has all four."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]
                             ) -> None: ...

    def close(self) -> None: ...


def open_i2c_bus(number: int) -> I2CBus:
    """smbus2's ``SMBus`` on ``/dev/i2c-<number>`` (bus 1: the Pi header's GPIO 2 and 3).

    Raises:
        HardwareError: smbus2 is not installed (the ``pca9685`` extra), or the bus
            cannot be opened (I2C not enabled, no permission).
    """
    try:
        from smbus2 import SMBus  # optional: only a PCA9685 joint needs it
    except ImportError as exc:
        raise HardwareError(
            "PCA9685 joints need smbus2: pip install 'tars-mqtt[pca9685]'") from exc
    try:
        return SMBus(number)
    except OSError as exc:
        raise HardwareError(
            f"cannot open I2C bus {number} (/dev/i2c-{number}): {exc.strerror or exc}; "
            "on a Pi enable I2C (raspi-config, Interface Options)") from exc


class PCA9685:
    """One board, set to servo frames when created; every output off when closed.

    Args:
        bus: the open I2C bus; shared by the boards on it, so not closed here.
        address: the board's 7-bit address (0x40 + its A0..A5 jumpers).
        bus_number: the bus's number, for messages.
        frequency: PWM frames per second (servos: 50).
        clock: waits the oscillator's settle time (tests pass a manual clock).

    Raises:
        HardwareError: the chip does not answer; the message names bus and address.
    """

    def __init__(self, bus: I2CBus, *, address: int = DEFAULT_ADDRESS, bus_number: int = 1,
                 frequency: float = 50.0, clock: Clock | None = None) -> None:
        self._bus, self.address, self.bus_number = bus, address, bus_number
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._lock = threading.Lock()
        self._closed = False
        self._mode = AI
        self.prescale = prescale_for(frequency)
        with self._lock:
            self._start()

    def __str__(self) -> str:
        return f"PCA9685 on I2C bus {self.bus_number} at 0x{self.address:02x}"

    __repr__ = __str__

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def frequency(self) -> float:
        """The PWM frequency the prescale really gives (50.03 Hz for 50)."""
        return OSCILLATOR_HZ / (COUNTS * (self.prescale + 1))

    def _fail(self, what: str, exc: OSError) -> HardwareError:
        return HardwareError(f"{self}{what}: {exc}")

    def _write(self, register: int, value: int, what: str) -> None:
        try:
            self._bus.write_byte_data(self.address, register, value)
        except OSError as exc:
            raise self._fail(f": cannot {what}", exc) from exc

    def _start(self) -> None:
        try:
            mode = self._bus.read_byte_data(self.address, MODE1)
        except OSError as exc:
            raise self._fail(" does not answer (check SDA/SCL, power and the address "
                             "jumpers)", exc) from exc
        self._write(MODE2, OUTDRV, "set MODE2")
        self._write(MODE1, (mode & ~RESTART) | SLEEP, "put it to sleep")
        self._write(PRE_SCALE, self.prescale, "set PRE_SCALE")  # only taken while asleep
        awake = self._mode = (mode & ~(RESTART | SLEEP)) | AI
        self._write(MODE1, awake, "wake it")
        self._clock.sleep(OSCILLATOR_SETTLE)
        # Resumes channels a previous run left pulsing (servos hold through a restart);
        # the chip ignores it when nothing was running.
        self._write(MODE1, awake | RESTART, "restart it")

    def _channel(self, channel: int, data: list[int], what: str) -> None:
        if not 0 <= channel < CHANNELS:
            raise HardwareError(f"{self}: no channel {channel} (0..{CHANNELS - 1})")
        with self._lock:
            if self._closed:
                raise HardwareError(f"{self} is closed")
            try:
                self._bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * channel, data)
            except OSError as exc:
                raise self._fail(f", channel {channel}: cannot {what}", exc) from exc

    def set_pulse(self, channel: int, width: float) -> None:
        """Send ``width``-second pulses on ``channel`` from now on (ON at 0, OFF at the count)."""
        count = pulse_count(width, self.prescale)
        self._channel(channel, [0, 0, count & 0xFF, count >> 8], "set the pulse")

    def off(self, channel: int) -> None:
        """No more pulses on ``channel``: the servo goes limp."""
        self._channel(channel, [0, 0, 0, FULL], "turn it off")

    def close(self) -> None:
        """Every output fully off, then sleep (oscillator off). Safe to call more than once.

        Raises:
            HardwareError: the bus failed; the board is closed all the same.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._write(ALL_LED_OFF_H, FULL, "turn every output off")
            self._write(MODE1, self._mode | SLEEP, "put it to sleep")
