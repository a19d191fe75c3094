"""Stand-ins for I2C hardware, as gpiozero's ``MockFactory`` stands in for pins.

:class:`SimulatedPCA9685` is the chip's register map with the datasheet's rules (the
power-on values, ``PRE_SCALE`` blocked while awake, ``RESTART`` only after the
oscillator settled, auto-increment, the ``ALL_LED`` registers); every byte written is
logged with the clock's time and every broken rule is noted in ``faults``.
:class:`MockI2CBus` routes smbus2's calls to the chips at their addresses and, like a
real bus, answers an address nobody has with ``OSError`` 121 (``EREMOTEIO``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from tars_mqtt.timing import Clock, MonotonicClock

from .pca9685 import (
    AI,
    ALL_LED_ON_L,
    COUNTS,
    EXTCLK,
    FULL,
    LED0_ON_L,
    MODE1,
    OSCILLATOR_HZ,
    OSCILLATOR_SETTLE,
    PRE_SCALE,
    RESTART,
    SLEEP,
)

__all__ = ["MockI2CBus", "SimulatedPCA9685", "Write"]

_LAST_LED = LED0_ON_L + 4 * 16 - 1  # 0x45
_TEST_MODE = 0xFF


class Write(NamedTuple):
    """One byte that reached a register."""

    time: float
    register: int
    value: int


def _nack() -> OSError:
    return OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))


class SimulatedPCA9685:
    """A PCA9685's registers as they are after power-on, changed by the rules of the chip.

    Args:
        clock: timestamps the writes (share the driver's manual clock).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.registers = bytearray(256)
        self.registers[MODE1] = SLEEP | 0x01  # asleep, ALLCALL on
        self.registers[0x01] = 0x04  # MODE2: OUTDRV
        self.registers[0x02:0x06] = bytes([0xE2, 0xE4, 0xE8, 0xE0])  # sub/all-call addresses
        for channel in range(16):
            self.registers[LED0_ON_L + 4 * channel + 3] = FULL  # every output fully off
        self.registers[PRE_SCALE] = 0x1E  # 200 Hz
        self.writes: list[Write] = []
        self.faults: list[str] = []
        self._woke_at: float | None = None

    # -- what the chip does ------------------------------------------------------------
    @property
    def asleep(self) -> bool:
        return bool(self.registers[MODE1] & SLEEP)

    @property
    def prescale(self) -> int:
        return self.registers[PRE_SCALE]

    @property
    def frequency(self) -> float:
        """The PWM frequency the prescale gives with the nominal oscillator."""
        return OSCILLATOR_HZ / (COUNTS * (self.prescale + 1))

    def counts(self, channel: int) -> tuple[int, int]:
        """``(ON, OFF)`` counts of ``channel`` (12 bits each, the full-on/off bits apart)."""
        base = LED0_ON_L + 4 * channel
        on_l, on_h, off_l, off_h = self.registers[base:base + 4]
        return (on_h & 0x0F) << 8 | on_l, (off_h & 0x0F) << 8 | off_l

    def fully_off(self, channel: int) -> bool:
        return bool(self.registers[LED0_ON_L + 4 * channel + 3] & FULL)

    def pulse_width(self, channel: int) -> float | None:
        """Seconds of high per frame on ``channel``; ``None`` when it gives no pulses."""
        if self.asleep or self.registers[MODE1] & RESTART or self.fully_off(channel):
            return None
        tick = (self.prescale + 1) / OSCILLATOR_HZ
        if self.registers[LED0_ON_L + 4 * channel + 1] & FULL:
            return COUNTS * tick
        on, off = self.counts(channel)
        return ((off - on) % COUNTS) * tick

    def _active(self) -> bool:
        return any(not self.fully_off(ch) for ch in range(16))

    # -- the I2C side ------------------------------------------------------------------
    def read(self, register: int) -> int:
        if _LAST_LED < register < ALL_LED_ON_L:
            raise _nack()  # reserved: not acknowledged
        if ALL_LED_ON_L <= register < PRE_SCALE:
            return 0  # the ALL_LED registers read as zero
        return self.registers[register]

    def write(self, register: int, data: Sequence[int]) -> None:
        """Bytes from ``register`` on, auto-incremented only if MODE1's AI bit is set."""
        for value in data:
            self._write_one(register, value)
            if self.registers[MODE1] & AI:
                register = self._next(register)

    @staticmethod
    def _next(register: int) -> int:
        if register in (_LAST_LED, PRE_SCALE):
            return MODE1
        return register + 1

    def _write_one(self, register: int, value: int) -> None:
        if _LAST_LED < register < ALL_LED_ON_L:
            raise _nack()
        now = self.clock.now()
        self.writes.append(Write(now, register, value))
        if register == MODE1:
            self._write_mode1(value, now)
        elif register == PRE_SCALE:
            if self.asleep:
                self.registers[PRE_SCALE] = value
            else:
                self.faults.append("PRE_SCALE written while awake: the chip ignores it")
        elif ALL_LED_ON_L <= register < PRE_SCALE:
            for channel in range(16):
                self._write_led(LED0_ON_L + 4 * channel + register - ALL_LED_ON_L, value)
        elif register == _TEST_MODE:
            self.faults.append("TestMode register written: reserved")
        elif LED0_ON_L <= register <= _LAST_LED:
            self._write_led(register, value)
        else:
            self.registers[register] = value

    def _write_led(self, register: int, value: int) -> None:
        self.registers[register] = value
        self.registers[MODE1] &= ~RESTART  # a PWM register write ends a pending restart

    def _write_mode1(self, value: int, now: float) -> None:
        old = self.registers[MODE1]
        new = (value & ~RESTART) | (old & (RESTART | EXTCLK))  # both are not plainly written
        if new & SLEEP and not old & SLEEP and self._active():
            new |= RESTART  # asleep with channels running: they wait for a restart
        if old & SLEEP and not new & SLEEP:
            self._woke_at = now
        if value & RESTART:
            if new & SLEEP:
                self.faults.append("RESTART written while asleep")
            elif self._woke_at is not None and now - self._woke_at < OSCILLATOR_SETTLE:
                self.faults.append(
                    f"RESTART written {1e6 * (now - self._woke_at):.0f} µs after SLEEP was "
                    f"cleared (the oscillator needs {1e6 * OSCILLATOR_SETTLE:.0f} µs)")
            else:
                new &= ~RESTART  # writing 1 clears it: channels that ran run again
        self.registers[MODE1] = new


class MockI2CBus:
    """An smbus2 ``SMBus`` look-alike with simulated chips at their addresses.

    Args:
        devices: chip by 7-bit address.

    Attributes:
        fail: when set, every transfer raises it (a loose wire, a brown-out).
        closed: whether :meth:`close` was called.
    """

    def __init__(self, devices: Mapping[int, SimulatedPCA9685] | None = None) -> None:
        self.devices = dict(devices or {})
        self.fail: OSError | None = None
        self.closed = False

    def _device(self, address: int) -> SimulatedPCA9685:
        if self.closed:
            raise OSError(errno.EBADF, "I2C bus is closed")
        if self.fail is not None:
            raise self.fail
        device = self.devices.get(address)
        if device is None:
            raise _nack()
        return device

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self._device(i2c_addr).read(register)

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._device(i2c_addr).write(register, [value])

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        self._device(i2c_addr).write(register, list(data))

    def close(self) -> None:
        self.closed = True
