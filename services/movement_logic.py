"""tars-movement's decisions, pure: what to do with one ``movement/command``.

:func:`handle` checks the command against the topic table, plans the motion and checks
every pose against the servos' limits before anything moves; :func:`status_data` is what
``movement/status`` says of it, and :func:`overdue` when a running motion counts as
wedged. :mod:`services.movement` carries the verdict out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hw import HardwareError, Keyframe, ServoRig, plan_motion

from .text import clean
from .topics import MOVEMENT_COMMAND, check_payload

__all__ = ["DEFAULT_MAX_AGE", "Verdict", "handle", "must_end_by", "overdue", "status_data"]

_ACTION_SHOWN = 40  # characters of a bad action echoed in its ``rejected`` status
_SLACK = 5.0  # seconds a motion may overrun twice its planned time before it counts as wedged
DEFAULT_MAX_AGE = 30.0  # seconds a command stays valid ($TARS_MOVEMENT_MAX_AGE)


@dataclass(frozen=True)
class Verdict:
    """What to do with one command: ``run`` its ``frames``, or answer ``event`` with ``error``."""

    action: str
    event: str  # run | rejected | busy
    frames: tuple[Keyframe, ...] = ()
    error: str | None = None


def handle(data: Any, *, busy: bool, rig: ServoRig, age: float = 0.0,
           max_age: float = float("inf"), stopped: bool = False) -> Verdict:
    """Decide on one command's ``data``; nothing moves. Bad input → ``rejected`` naming it.

    ``age`` is how long ago the command was sent: one older than ``max_age`` (kept by the
    broker while the service restarted) is refused, since a robot must not wave at nobody.
    ``stopped``: a ``movement/stop`` sent after the command came first; it is refused too.
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
    if stopped:
        return Verdict(action, "rejected", error="a movement/stop sent after it came first")
    if busy:
        return Verdict(action, "busy", error="another motion is running; send movement/stop first")
    return Verdict(action, "run", tuple(frames))


def status_data(event: str, action: str, *, error: str | None = None,
                angles: dict[str, float] | None = None) -> dict[str, Any]:
    """The ``movement/status`` data (angles rounded to hundredths of a degree)."""
    data: dict[str, Any] = {"event": event, "action": action}
    if error:
        data["error"] = error
    if angles is not None:
        data["angles"] = {name: round(a, 2) for name, a in angles.items()}
    return data


def must_end_by(verdict: Verdict, now: float) -> float:
    """When the motion ``verdict`` starts at ``now`` must have ended: twice its plan, and slack."""
    return now + 2 * sum(frame.duration for frame in verdict.frames) + _SLACK


def overdue(running: tuple[str, float] | None, now: float) -> str | None:
    """Why the ``(action, must_end_by)`` running counts as wedged at ``now``, or None."""
    if running is not None and now > running[1]:
        return f"motion {running[0]!r} is still running long after its planned end"
    return None
