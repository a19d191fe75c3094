"""TARS's motions as data, and the pure maths that turns them into timed poses.

Nothing here touches a pin: a motion is a tuple of :class:`Keyframe` (a pose and the
seconds to reach it), :func:`plan_motion` scales it by speed and places it around the
calibrated neutral pose, and :func:`interpolate` gives the in-between poses that
:meth:`hw.ServoRig.move_to` sends at a fixed step rate.

Keyframe angles in :data:`MOTIONS` are degrees *relative to each joint's neutral*
(positive: torso up, leg swung forward, arm raised forward); ``pose`` takes absolute
angles. A joint a keyframe does not name holds where it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import MotionError

__all__ = [
    "Keyframe",
    "MAX_SPEED",
    "MIN_SPEED",
    "MOTIONS",
    "MOTION_NAMES",
    "POSE",
    "ease",
    "interpolate",
    "plan_motion",
    "step_count",
]

MIN_SPEED = 0.1
MAX_SPEED = 3.0
POSE = "pose"
DEFAULT_POSE_DURATION = 1.0
MAX_POSE_DURATION = 30.0


def _finite(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and math.isfinite(value))


@dataclass(frozen=True)
class Keyframe:
    """Reach ``pose`` (joint name → degrees) in ``duration`` seconds."""

    pose: Mapping[str, float]
    duration: float

    def __post_init__(self) -> None:
        if not _finite(self.duration) or self.duration < 0:
            raise MotionError(f"keyframe duration {self.duration!r} must be a number >= 0")
        for joint, angle in self.pose.items():
            if not isinstance(joint, str) or not _finite(angle):
                raise MotionError(f"keyframe angle {joint!r}={angle!r} must be a number")
        frozen = MappingProxyType({joint: float(a) for joint, a in self.pose.items()})
        object.__setattr__(self, "pose", frozen)


def _kf(duration: float, **pose: float) -> Keyframe:
    return Keyframe(pose, duration)


def _step(torso: float, legs: tuple[float, float]) -> tuple[Keyframe, ...]:
    """Lift the body, swing the legs, set the body down, bring the legs back under it."""
    left, right = legs
    return (
        _kf(0.3, torso_height=torso),
        _kf(0.4, left_leg=left, right_leg=right),
        _kf(0.3, torso_height=0),
        _kf(0.4, left_leg=0, right_leg=0),
    )


_ARMS_UP = 70.0
_ARMS_MID = 45.0

MOTIONS: Mapping[str, tuple[Keyframe, ...]] = MappingProxyType({
    "reset": (
        _kf(0.8, torso_height=0, left_leg=0, right_leg=0, left_arm=0, right_arm=0),
    ),
    "step_forward": _step(25, (25, 25)),
    "step_backward": _step(25, (-25, -25)),
    "turn_left": _step(25, (-20, 20)),
    "turn_right": _step(25, (20, -20)),
    "wave": (
        _kf(0.5, right_arm=_ARMS_UP),
        _kf(0.25, right_arm=_ARMS_MID),
        _kf(0.25, right_arm=_ARMS_UP),
        _kf(0.25, right_arm=_ARMS_MID),
        _kf(0.25, right_arm=_ARMS_UP),
        _kf(0.5, right_arm=0),
    ),
    "bow": (
        _kf(0.8, torso_height=-30, left_arm=20, right_arm=20),
        _kf(0.6, torso_height=-30, left_arm=20, right_arm=20),  # hold the bow
        _kf(0.8, torso_height=0, left_arm=0, right_arm=0),
    ),
    "laugh": (
        *(_kf(0.15, torso_height=t, left_arm=a, right_arm=a)
          for _ in range(3) for t, a in ((10, 10), (-5, -10))),
        _kf(0.3, torso_height=0, left_arm=0, right_arm=0),
    ),
    "balance": (
        _kf(0.5, left_leg=8, right_leg=-8),
        _kf(0.5, left_leg=-8, right_leg=8),
        _kf(0.4, left_leg=4, right_leg=-4),
        _kf(0.4, left_leg=0, right_leg=0),
    ),
})

MOTION_NAMES: tuple[str, ...] = tuple(sorted((*MOTIONS, POSE)))


def _check_speed(speed: Any) -> float:
    if not _finite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise MotionError(f"speed {speed!r} is out of range {MIN_SPEED}..{MAX_SPEED}")
    return float(speed)


def _pose_keyframe(params: Mapping[str, Any] | None, speed: float) -> Keyframe:
    if not isinstance(params, Mapping) or "angles" not in params:
        raise MotionError("motion 'pose' needs params {'angles': {joint: degrees}, "
                          "'duration': seconds}")
    extra = sorted(set(params) - {"angles", "duration"})
    if extra:
        raise MotionError(f"motion 'pose': unknown param {extra[0]!r} (known: angles, duration)")
    angles = params["angles"]
    if not isinstance(angles, Mapping) or not angles:
        raise MotionError(f"motion 'pose': angles must be a non-empty mapping, got {angles!r}")
    duration = params.get("duration", DEFAULT_POSE_DURATION)
    if not _finite(duration) or not 0 <= duration <= MAX_POSE_DURATION:
        raise MotionError(
            f"motion 'pose': duration {duration!r} is out of range 0..{MAX_POSE_DURATION}")
    return Keyframe(angles, duration / speed)


def plan_motion(
    name: str,
    speed: float = 1.0,
    params: Mapping[str, Any] | None = None,
    *,
    neutral: Mapping[str, float] | None = None,
) -> list[Keyframe]:
    """Turn a motion name, speed and params into keyframes with absolute angles.

    Args:
        name: one of :data:`MOTION_NAMES`.
        speed: divides every duration; ``MIN_SPEED``..``MAX_SPEED`` (2.0 = twice as fast).
        params: only for ``pose``: ``{"angles": {joint: degrees}, "duration": seconds}``.
        neutral: each joint's neutral angle (:meth:`hw.ServoRig.neutral_pose`); the
            motions' relative angles are added to it. Missing joints count as 0.

    Raises:
        MotionError: unknown name (the message lists the known ones), speed out of
            range, or bad params.
    """
    speed = _check_speed(speed)
    if name == POSE:
        return [_pose_keyframe(params, speed)]
    if name not in MOTIONS:
        raise MotionError(f"unknown motion {name!r} (known: {', '.join(MOTION_NAMES)})")
    if params:
        raise MotionError(f"motion {name!r} takes no params, got {dict(params)!r}")
    base = neutral or {}
    return [
        Keyframe({j: base.get(j, 0.0) + a for j, a in kf.pose.items()}, kf.duration / speed)
        for kf in MOTIONS[name]
    ]


def ease(t: float) -> float:
    """Cosine ease-in-out on 0..1: servos start and stop gently at every keyframe."""
    t = min(max(t, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * t)


def step_count(duration: float, rate_hz: float) -> int:
    """How many interpolation steps a move of ``duration`` seconds takes (at least 1)."""
    return max(1, round(duration * rate_hz))


def interpolate(
    start: Mapping[str, float], target: Mapping[str, float], steps: int
) -> list[dict[str, float]]:
    """The poses after each of ``steps`` steps from ``start`` to ``target``.

    Only the joints in ``target`` appear; the last pose is exactly ``target``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    poses = []
    for i in range(1, steps):
        f = ease(i / steps)
        poses.append({j: start[j] + (a - start[j]) * f for j, a in target.items()})
    poses.append(dict(target))
    return poses
