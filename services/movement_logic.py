"""tars-movement's decisions, pure: what to do with one ``movement/command``.

:func:`handle` checks the command against the topic table, plans the motion and checks
every pose against the servos' limits before anything moves; :mod:`services.movement`
carries the verdict out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hw import HardwareError, Keyframe, ServoRig, plan_motion

from .text import clean
from .topics import MOVEMENT_COMMAND, check_payload

__all__ = ["Verdict", "handle"]

_ACTION_SHOWN = 40  # characters of a bad action echoed in its ``rejected`` status


@dataclass(frozen=True)
class Verdict:
    """What to do with one command: ``run`` its ``frames``, or answer ``event`` with ``error``."""

    action: str
    event: str  # run | rejected | busy
    frames: tuple[Keyframe, ...] = ()
    error: str | None = None


def handle(data: Any, *, busy: bool, rig: ServoRig, age: float = 0.0,
           max_age: float = float("inf")) -> Verdict:
    """Decide on one command's ``data``; nothing moves. Bad input → ``rejected`` naming it.

    ``age`` is how long ago the command was sent: one older than ``max_age`` (kept by the
    broker while the service restarted) is refused, since a robot must not wave at nobody.
    Never raises, whatever ``data`` is; ``action`` and ``error`` are always short and
    encodable, so the answer can be sent.
    """
    action = data.get("action") if isinstance(data, dict) else None
    action = clean(action, _ACTION_SHOWN) if isinstance(action, str) else ""
    found = check_payload(MOVEMENT_COMMAND, data)
    if found:
        return Verdict(action, "rejected", error=clean("; ".join(found)))
    try:
        frames = plan_motion(action, data.get("speed", 1.0), data.get("params"),
                             neutral=rig.neutral_pose())
        for frame in frames:
            rig.validate(frame.pose)  # out-of-range angles are refused before anything moves
    except HardwareError as exc:
        return Verdict(action, "rejected", error=clean(str(exc)))
    if age > max_age:
        return Verdict(action, "rejected", error=f"command sent {age:.0f} s ago, older than"
                                                 f" the {max_age:g} s a command stays valid")
    if busy:
        return Verdict(action, "busy", error="another motion is running; send movement/stop first")
    return Verdict(action, "run", tuple(frames))
