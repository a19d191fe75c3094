"""One servo: a :class:`Joint` held to its calibrated soft limits, on its output.

Every angle is checked before the pin or channel hears anything, because a wrong number
here moves metal.
"""

from __future__ import annotations

import contextlib
import math
from types import TracebackType

from gpiozero.pins import Factory

from .calibration import JointCalibration
from .errors import HardwareError, PoseError
from .outputs import PCA9685Boards, open_output

__all__ = ["Joint"]


class Joint:
    """One servo, held to its calibrated soft limits, on the output its driver names.

    It moves to its ``neutral`` angle when created. ``angle`` is the last commanded
    angle (a hobby servo reports nothing back), also after :meth:`relax`.

    Args:
        calibration: the joint's values; ``driver`` picks a GPIO pin or a PCA9685 channel.
        pin_factory: gpiozero pin factory for a GPIO joint (``None``: gpiozero's own).
        boards: the PCA9685 boards to take a channel from (a :class:`ServoRig` shares its
            own); ``None`` opens the joint's own, closed with it.
    """

    def __init__(self, calibration: JointCalibration, *, pin_factory: Factory | None = None,
                 boards: PCA9685Boards | None = None) -> None:
        self._cal = calibration
        self._own_boards = None
        if boards is None and calibration.driver == "pca9685":
            boards = self._own_boards = PCA9685Boards()
        try:
            self._output = open_output(calibration, pin_factory=pin_factory, boards=boards)
        except BaseException:
            if self._own_boards is not None:
                with contextlib.suppress(Exception):  # the first error is the one to see
                    self._own_boards.close()
            raise
        self._angle = calibration.neutral
        self._attached = True
        self._closed = False

    @property
    def name(self) -> str:
        return self._cal.name

    @property
    def calibration(self) -> JointCalibration:
        return self._cal

    @property
    def angle(self) -> float:
        """The last commanded angle, in degrees."""
        return self._angle

    @property
    def attached(self) -> bool:
        """Whether pulses are being sent (``False`` after :meth:`relax`)."""
        return self._attached and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    def validate(self, angle: float) -> None:
        """Raise :class:`PoseError` unless ``angle`` is within the soft limits."""
        lo, hi = self._cal.limits
        ok = (not isinstance(angle, bool) and isinstance(angle, int | float)
              and math.isfinite(angle) and lo <= angle <= hi)
        if not ok:
            shown = f"{angle:g}" if isinstance(angle, int | float) else repr(angle)
            raise PoseError(
                f"joint {self.name!r}: angle {shown} is outside its limits {lo:g}..{hi:g}",
                joint=self.name, angle=angle if isinstance(angle, int | float) else None,
                limits=(lo, hi))

    def set_angle(self, angle: float) -> None:
        """Move at once to ``angle`` (validated first; re-attaches a relaxed servo)."""
        if self._closed:
            raise HardwareError(f"joint {self.name!r} is closed")
        self.validate(angle)
        self._output.set_angle(angle)
        self._angle = float(angle)
        self._attached = True

    def relax(self) -> None:
        """Stop sending pulses: the servo goes limp and can be moved by hand."""
        if not self._closed:
            self._output.detach()
            self._attached = False

    def close(self) -> None:
        """Stop the pulses and release the pin or channel. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            self._output.close()
        finally:
            if self._own_boards is not None:
                self._own_boards.close()

    def __enter__(self) -> Joint:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"angle={self._angle:g}"
        return f"<Joint {self.name!r} {self._cal.output} {state}>"
