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
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from hw import ServoRig
from tars_mqtt import Message, MQTTClient

from .common import Tally, env_float, publish, reply
from .movement_logic import Verdict, handle
from .runtime import Service, run
from .text import clean, shown
from .topics import MOVEMENT_COMMAND, MOVEMENT_STATUS, MOVEMENT_STOP, check_payload

__all__ = ["RESULT_TYPE", "Movement", "Verdict", "handle", "main", "setup"]

log = logging.getLogger("tars.movement")
RESULT_TYPE = "movement.result"  # the reply to a command sent as a request
_SLACK = 5.0  # seconds a motion may overrun twice its planned time before it counts as wedged
DEFAULT_MAX_AGE = 30.0  # seconds a command stays valid ($TARS_MOVEMENT_MAX_AGE)


class Movement:
    """The service: subscriptions, the motion thread, status and replies.

    Its state (``_running``, the job) changes only once the step that can fail is done:
    a motion starts only after its ``started`` status went out, and the motion thread
    survives anything a job does.
    """

    def __init__(self, client: MQTTClient, rig: ServoRig, *,
                 clock: Callable[[], float] = time.monotonic,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self.client, self.rig, self.max_age = client, rig, max_age
        self.tally = Tally()
        self._clock = clock
        self._lock = threading.Lock()  # the running job, and the order of status events
        self._running: tuple[str, float] | None = None  # (action, when it must have ended)
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._closed = False
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
            verdict = handle(msg.data, busy=self._running is not None, rig=self.rig,
                             age=time.time() - msg.envelope.ts, max_age=self.max_age)
            if verdict.event == "run":
                if not self._answer(msg, "started", verdict.action, final=False):
                    log.warning("%r not run: its start could not be reported", verdict.action)
                    return
                planned = sum(frame.duration for frame in verdict.frames)
                self._running = (verdict.action, self._clock() + 2 * planned + _SLACK)
                self._stop.clear()
                self._jobs.put((msg, verdict))
                return
            self.tally.add(verdict.event)
            log.info("%s %s: %s", verdict.event, verdict.action, verdict.error)
            self._answer(msg, verdict.event, verdict.action, error=verdict.error)

    def on_stop(self, msg: Message) -> None:
        """Honoured whatever the payload (a stop must never be lost); bad ones are counted."""
        if msg.envelope is None or check_payload(MOVEMENT_STOP, msg.data):
            self.tally.add("malformed")
        self._stop.set()
        with self._lock:
            if self._running is None:  # nothing to preempt: acknowledge, holding still
                self._answer(msg, "stopped", "none", angles=self.rig.angles())
        reason = msg.data.get("reason", "-") if isinstance(msg.data, dict) else "-"
        log.info("stop requested: %s", shown(reason))

    def _motions(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._run(*job)
            except Exception:  # nothing a job does may end this thread
                log.exception("motion %r: the motion thread carries on", job[1].action)
                with self._lock:
                    self._running = None
                    self._idle.notify_all()

    def _run(self, msg: Message, verdict: Verdict) -> None:
        error = None
        try:
            event = "completed" if self.rig.run_motion(verdict.frames, self._stop) \
                else "stopped"
        except Exception as exc:  # a hardware fault is reported, and the next motion runs
            log.exception("motion %r failed", verdict.action)
            event, error = "failed", clean(str(exc) or type(exc).__name__)
        with self._lock:
            self._running = None
            self._idle.notify_all()
            self.tally.add(event)
            self._answer(msg, event, verdict.action, error=error, angles=self.rig.angles())

    def _answer(self, msg: Message, event: str, action: str, *, error: str | None = None,
                angles: dict[str, float] | None = None, final: bool = True) -> bool:
        """Status (and for a request's last event, the reply); whether the status went out."""
        data: dict[str, Any] = {"event": event, "action": action}
        if error:
            data["error"] = error
        if angles is not None:
            data["angles"] = {name: round(a, 2) for name, a in angles.items()}
        correlate = msg.envelope.id if msg.envelope else None
        sent = publish(self.client, MOVEMENT_STATUS, data, correlate, tally=self.tally)
        if final and msg.reply_to:
            reply(self.client, msg, RESULT_TYPE, data, tally=self.tally)
        return sent is not None

    def liveness(self) -> str | None:
        """Why the motion thread is dead or wedged (a motion far past its planned end)."""
        if self._closed:
            return None
        if not self._thread.is_alive():
            return "the motion thread has died"
        with self._lock:
            running = self._running
        if running is not None and self._clock() > running[1]:
            return f"motion {running[0]!r} is still running long after its planned end"
        return None

    def halt(self, timeout: float = 5.0) -> None:
        """Stop any motion and wait until it has reported ``stopped`` (at shutdown)."""
        with self._idle:
            self._stop.set()
            self._idle.wait_for(lambda: self._running is None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop any motion, end the motion thread, release the pins. Idempotent."""
        self._closed = True
        self._stop.set()
        self._jobs.put(None)
        self._thread.join(timeout)
        self.rig.close()


def setup(client: MQTTClient) -> Service:
    """The service on ``client``: TARS_CALIBRATION, GPIOZERO_PIN_FACTORY for the rig,
    TARS_MOVEMENT_MAX_AGE for how old a command may be."""
    max_age = env_float(os.environ, "TARS_MOVEMENT_MAX_AGE", DEFAULT_MAX_AGE, low=0.1)
    service = Movement(client, ServoRig.from_env(), max_age=max_age)

    def close() -> None:
        service.close()
        log.info("movement stopped; counts %s", service.tally.as_dict())

    return Service(stopping=service.halt, close=close, liveness=service.liveness)


def main() -> int:
    """``tars-movement``: MQTT_* for the client, TARS_CALIBRATION, GPIOZERO_PIN_FACTORY."""
    return run("movement", setup)


if __name__ == "__main__":
    raise SystemExit(main())
