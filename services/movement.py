"""tars-movement: runs ``movement/command`` on the servos; ``movement/stop`` preempts at once.

One motion at a time, on a motion thread of its own: the MQTT workers only decide and
hand over, so a ``movement/stop`` (its own subscription, its own mailbox) is handled by
another worker at once and the rig ends the move within one interpolation step. Every
command gets ``movement/status`` events correlated to its id (``started`` then
``completed``/``failed``/``stopped``, or at once ``rejected``/``busy``); a command sent
with ``client.request`` also gets the final event as its reply.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from hw import HardwareError, Keyframe, ServoRig, plan_motion
from tars_mqtt import Message, MQTTClient, PublishError

from .common import Tally, publish
from .runtime import Service, run
from .topics import MOVEMENT_COMMAND, MOVEMENT_STATUS, MOVEMENT_STOP, check_payload

__all__ = ["RESULT_TYPE", "Movement", "Verdict", "handle", "main", "setup"]

log = logging.getLogger("tars.movement")
RESULT_TYPE = "movement.result"  # the reply to a command sent as a request


@dataclass(frozen=True)
class Verdict:
    """What to do with one command: ``run`` its ``frames``, or answer ``event`` with ``error``."""

    action: str
    event: str  # run | rejected | busy
    frames: tuple[Keyframe, ...] = ()
    error: str | None = None


def handle(data: Any, *, busy: bool, rig: ServoRig) -> Verdict:
    """Decide on one command's ``data``; nothing moves. Bad input → ``rejected`` naming it."""
    action = data.get("action") if isinstance(data, dict) else None
    action = action if isinstance(action, str) else ""
    found = check_payload(MOVEMENT_COMMAND, data)
    if found:
        return Verdict(action, "rejected", error="; ".join(found))
    try:
        frames = plan_motion(action, data.get("speed", 1.0), data.get("params"),
                             neutral=rig.neutral_pose())
        for frame in frames:
            rig.validate(frame.pose)  # out-of-range angles are refused before anything moves
    except HardwareError as exc:
        return Verdict(action, "rejected", error=str(exc))
    if busy:
        return Verdict(action, "busy", error="another motion is running; send movement/stop first")
    return Verdict(action, "run", tuple(frames))


class Movement:
    """The service: subscriptions, the motion thread, status and replies."""

    def __init__(self, client: MQTTClient, rig: ServoRig) -> None:
        self.client, self.rig = client, rig
        self.tally = Tally()
        self._lock = threading.Lock()  # the running job, and the order of status events
        self._running = False
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._jobs: queue.Queue[tuple[Message, Verdict] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._motions, name="tars-movement-motion",
                                        daemon=True)
        client.subscribe(MOVEMENT_COMMAND.name, self.on_command, qos=MOVEMENT_COMMAND.qos)
        client.subscribe(MOVEMENT_STOP.name, self.on_stop, qos=MOVEMENT_STOP.qos)
        self._thread.start()

    def on_command(self, msg: Message) -> None:
        if msg.envelope is None:
            n = self.tally.add("malformed")
            log.warning("malformed command #%d ignored: %s", n, msg.decode_error)
            return
        with self._lock:
            verdict = handle(msg.data, busy=self._running, rig=self.rig)
            if verdict.event == "run":
                self._running = True
                self._stop.clear()
                self._answer(msg, "started", verdict.action, final=False)
                self._jobs.put((msg, verdict))
                return
            self.tally.add(verdict.event)
            log.info("%s %r: %s", verdict.event, verdict.action, verdict.error)
            self._answer(msg, verdict.event, verdict.action, error=verdict.error)

    def on_stop(self, msg: Message) -> None:
        """Honoured whatever the payload (a stop must never be lost); bad ones are counted."""
        if msg.envelope is None or check_payload(MOVEMENT_STOP, msg.data):
            self.tally.add("malformed")
        self._stop.set()
        with self._lock:
            if not self._running:  # nothing to preempt: acknowledge, holding still
                self._answer(msg, "stopped", "none", angles=self.rig.angles())
        log.info("stop requested: %s", msg.data.get("reason", "-")
                 if isinstance(msg.data, dict) else "-")

    def _motions(self) -> None:
        while (job := self._jobs.get()) is not None:
            msg, verdict = job
            error = None
            try:
                event = "completed" if self.rig.run_motion(verdict.frames, self._stop) \
                    else "stopped"
            except Exception as exc:  # a hardware fault must not kill the motion thread
                log.exception("motion %r failed", verdict.action)
                event, error = "failed", str(exc) or type(exc).__name__
            with self._lock:
                self._running = False
                self._idle.notify_all()
                self.tally.add(event)
                self._answer(msg, event, verdict.action, error=error, angles=self.rig.angles())

    def _answer(self, msg: Message, event: str, action: str, *, error: str | None = None,
                angles: dict[str, float] | None = None, final: bool = True) -> None:
        data: dict[str, Any] = {"event": event, "action": action}
        if error:
            data["error"] = error
        if angles is not None:
            data["angles"] = {name: round(a, 2) for name, a in angles.items()}
        correlate = msg.envelope.id if msg.envelope else None
        publish(self.client, MOVEMENT_STATUS, data, correlate=correlate)
        if final and msg.reply_to:
            try:
                self.client.reply(msg, RESULT_TYPE, data)
            except PublishError as exc:
                log.warning("reply to %s not sent: %s", msg.reply_to, exc)

    def halt(self, timeout: float = 5.0) -> None:
        """Stop any motion and wait until it has reported ``stopped`` (at shutdown)."""
        with self._idle:
            self._stop.set()
            self._idle.wait_for(lambda: not self._running, timeout)

    def liveness(self) -> str | None:
        """Why the motion thread cannot run commands, else None (for the watchdog)."""
        return None if self._thread.is_alive() else "the motion thread has died"

    def close(self, timeout: float = 5.0) -> None:
        """Stop any motion, end the motion thread, release the pins. Idempotent."""
        self._stop.set()
        self._jobs.put(None)
        self._thread.join(timeout)
        self.rig.close()


def setup(client: MQTTClient) -> Service:
    """The service on ``client``: TARS_CALIBRATION, GPIOZERO_PIN_FACTORY for the rig."""
    service = Movement(client, ServoRig.from_env())

    def close() -> None:
        service.close()
        log.info("movement stopped; counts %s", service.tally.as_dict())

    return Service(stopping=service.halt, close=close, liveness=service.liveness)


def main() -> int:
    """``tars-movement``: MQTT_* for the client, TARS_CALIBRATION, GPIOZERO_PIN_FACTORY."""
    return run("movement", setup)


if __name__ == "__main__":
    raise SystemExit(main())
