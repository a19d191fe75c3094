"""Where a joint's pulses come from: gpiozero on a GPIO pin, or a PCA9685 channel.

The seam is :class:`ServoOutput`: a :class:`hw.Joint` hands it angles already held to
the soft limits, and it turns them into pulses. Which output a joint gets is its
calibration's ``driver``; each starts at the joint's neutral angle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from gpiozero import AngularServo
from gpiozero.pins import Factory

from tars_mqtt.timing import Clock

from .calibration import FRAME_WIDTH, JointCalibration
from .errors import HardwareError
from .pca9685 import PCA9685, I2CBus, open_i2c_bus
from .pins import resolve_pin_factory

__all__ = [
    "GPIOServo", "PCA9685Boards", "PCA9685Servo", "ServoOutput", "close_all", "open_output",
]


class ServoOutput(Protocol):
    """One servo's signal line."""

    def set_angle(self, angle: float) -> None:
        """Pulse for ``angle`` (within the calibration) from now on; re-attaches."""
        ...

    def detach(self) -> None:
        """No pulses: the servo goes limp."""
        ...

    def close(self) -> None:
        """No pulses, and the pin or channel released."""
        ...


class GPIOServo:
    """gpiozero's ``AngularServo`` on a GPIO pin (pulses timed by the pin library)."""

    def __init__(self, cal: JointCalibration, *, pin_factory: Factory | None = None) -> None:
        factory = resolve_pin_factory(pin_factory)  # a PinFactoryError stays one
        lo, hi = cal.min_angle, cal.max_angle
        if cal.inverted:
            lo, hi = hi, lo  # gpiozero's way to reverse a servo's sense
        try:
            self._servo: Any = AngularServo(
                cal.pin, initial_angle=cal.neutral, min_angle=lo, max_angle=hi,
                min_pulse_width=cal.min_pulse_width, max_pulse_width=cal.max_pulse_width,
                frame_width=FRAME_WIDTH, pin_factory=factory)
        except Exception as exc:  # pin in use, not a PWM pin, no such pin ...
            raise HardwareError(
                f"joint {cal.name!r}: cannot drive a servo on {cal.output}: {exc}") from exc

    def set_angle(self, angle: float) -> None:
        self._servo.angle = angle

    def detach(self) -> None:
        self._servo.detach()

    def close(self) -> None:
        self._servo.close()


class PCA9685Boards:
    """The PCA9685 boards joints share: each bus and board opened on first use.

    Args:
        i2c_factory: opens I2C bus ``n``; default smbus2's ``SMBus`` (the ``pca9685``
            extra). Tests pass ``lambda n: MockI2CBus(...)``.
        clock: for the boards' oscillator settle time.
    """

    def __init__(self, *, i2c_factory: Callable[[int], I2CBus] | None = None,
                 clock: Clock | None = None) -> None:
        self._open_bus = i2c_factory if i2c_factory is not None else open_i2c_bus
        self._clock = clock
        self._buses: dict[int, I2CBus] = {}
        self._boards: dict[tuple[int, int], PCA9685] = {}

    def board(self, bus: int, address: int) -> PCA9685:
        """The board at ``address`` on bus ``bus``, set up the first time it is asked for."""
        board = self._boards.get((bus, address))
        if board is None:
            if bus not in self._buses:
                self._buses[bus] = self._open_bus(bus)
            board = PCA9685(self._buses[bus], address=address, bus_number=bus,
                            frequency=1 / FRAME_WIDTH, clock=self._clock)
            self._boards[(bus, address)] = board
        return board

    def close(self) -> None:
        """Every board's outputs off and asleep, then the buses closed."""
        parts: list[_Closable] = [*self._boards.values(), *self._buses.values()]
        self._boards.clear()
        self._buses.clear()
        close_all(parts)


class PCA9685Servo:
    """One PCA9685 channel: hardware-timed pulses, from the calibration's angle map."""

    def __init__(self, cal: JointCalibration, boards: PCA9685Boards) -> None:
        if cal.channel is None:
            raise ValueError(f"joint {cal.name!r} is not a PCA9685 joint")
        self._cal, self._channel = cal, cal.channel
        with self._naming():
            self._board = boards.board(cal.i2c_bus, cal.i2c_address)
        self.set_angle(cal.neutral)

    @contextmanager
    def _naming(self) -> Iterator[None]:
        try:
            yield
        except HardwareError as exc:  # the board's message names bus, address, channel
            raise HardwareError(f"joint {self._cal.name!r}: {exc}") from exc

    def set_angle(self, angle: float) -> None:
        with self._naming():
            self._board.set_pulse(self._channel, self._cal.pulse_width(angle))

    def detach(self) -> None:
        with self._naming():
            self._board.off(self._channel)

    def close(self) -> None:
        if not self._board.closed:
            self.detach()


def open_output(cal: JointCalibration, *, pin_factory: Factory | None = None,
                boards: PCA9685Boards | None = None) -> ServoOutput:
    """The output ``cal.driver`` names, at the joint's neutral angle.

    Raises:
        HardwareError: the pin or board cannot be used; the message names the joint.
        ValueError: a PCA9685 joint without ``boards``.
    """
    if cal.driver == "pca9685":
        if boards is None:
            raise ValueError(f"joint {cal.name!r}: a PCA9685 joint needs boards")
        return PCA9685Servo(cal, boards)
    return GPIOServo(cal, pin_factory=pin_factory)


class _Closable(Protocol):
    def close(self) -> None: ...


def close_all(parts: Iterable[_Closable]) -> None:
    """Close every part even if some fail, then raise the first failure: one bad bus
    must not leave the other servos pulsing."""
    errors: list[Exception] = []
    for part in parts:
        try:
            part.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
