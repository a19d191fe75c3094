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
import time
from collections.abc import Callable

from hw import ServoRig
from tars_mqtt import Message, MQTTClient

from .common import Tally, env_float, publish, reply, reply_topic_for, request_id
from .movement_logic import DEFAULT_MAX_AGE, Verdict, handle, status_data
from .movement_motion import Motions
from .runtime import Service, run
from .text import clean, shown
from .topics import MOVEMENT_COMMAND, MOVEMENT_STATUS, MOVEMENT_STOP, check_payload

__all__ = ["RESULT_TYPE", "Movement", "Verdict", "handle", "main", "setup"]

log = logging.getLogger("tars.movement")
RESULT_TYPE = "movement.result"  # the reply to a command sent as a request


class Movement:
    """The handlers: decide on each command, hand motions to :class:`Motions`, answer.

    Its state (the running motion) changes only once the step that can fail is done: a
    motion starts only after its ``started`` status went out.
    """

    def __init__(self, client: MQTTClient, rig: ServoRig, *,
                 clock: Callable[[], float] = time.monotonic,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self.client, self.rig, self.max_age, self.tally = client, rig, max_age, Tally()
        self.motions = Motions(rig, self._ended, clock=clock)
        self._stopped_at = float("-inf")  # when the last stop was sent: commands before it
        client.subscribe(MOVEMENT_COMMAND.name, self.on_command, qos=MOVEMENT_COMMAND.qos)
        client.subscribe(MOVEMENT_STOP.name, self.on_stop, qos=MOVEMENT_STOP.qos)

    def on_command(self, msg: Message) -> None:
        if msg.envelope is None:  # answered when MQTT 5 properties say to whom
            n = self.tally.add("malformed")
            log.warning("malformed command #%d ignored: %s", n, msg.decode_error)
            if request_id(msg) is not None:
                self._answer(msg, "rejected", "", error=clean(f"not an envelope"
                                                              f" ({msg.decode_error})"))
            return
        with self.motions.lock:
            verdict = handle(msg.data, busy=self.motions.busy, rig=self.rig,
                             age=time.time() - msg.envelope.ts, max_age=self.max_age,
                             stopped=msg.envelope.ts <= self._stopped_at)
            if verdict.event == "run":
                if not self._answer(msg, "started", verdict.action, final=False):
                    log.warning("%r not run: its start could not be reported", verdict.action)
                    return
                self.motions.start(msg, verdict)
                return
            self.tally.add(verdict.event)
            log.info("%s %s: %s", verdict.event, verdict.action, verdict.error)
            self._answer(msg, verdict.event, verdict.action, error=verdict.error)

    def on_stop(self, msg: Message) -> None:
        """Honoured whatever the payload (a stop must never be lost); bad ones are counted.

        It also stops what was sent before it and comes after it (commands and stops travel
        on different subscriptions), or is being started meanwhile (set again, locked)."""
        if msg.envelope is None or check_payload(MOVEMENT_STOP, msg.data):
            self.tally.add("malformed")
        self.motions.stop.set()  # at once: a running motion ends within one step
        now = time.time()  # a stop dated in the future would refuse commands until then
        sent = min(now, msg.envelope.ts) if msg.envelope is not None else now
        with self.motions.lock:
            self.motions.stop.set()
            self._stopped_at = max(self._stopped_at, sent)
            if not self.motions.busy:  # nothing to preempt: acknowledge, holding still
                self._answer(msg, "stopped", "none", angles=self.rig.angles())
        reason = msg.data.get("reason", "-") if isinstance(msg.data, dict) else "-"
        log.info("stop requested: %s", shown(reason))

    def _ended(self, msg: Message, event: str, action: str, error: str | None) -> None:
        self.tally.add(event)
        self._answer(msg, event, action, error=error, angles=self.rig.angles())

    def _answer(self, msg: Message, event: str, action: str, *, error: str | None = None,
                angles: dict[str, float] | None = None, final: bool = True) -> bool:
        """Status (and for a request's last event, the reply); whether the status went out."""
        data = status_data(event, action, error=error, angles=angles)
        sent = publish(self.client, MOVEMENT_STATUS, data, request_id(msg), tally=self.tally)
        if final and reply_topic_for(msg, MOVEMENT_STATUS) is not None:
            reply(self.client, msg, RESULT_TYPE, data, tally=self.tally)
        elif final and msg.reply_to:  # another topic, a wildcard: the status must do
            n = self.tally.add("unfollowed")
            log.warning("reply_to %s not followed (#%d)", shown(msg.reply_to), n)
        return sent is not None

    def liveness(self) -> str | None:
        return self.motions.liveness()

    def halt(self, timeout: float = 5.0) -> None:
        self.motions.halt(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop any motion, end the motion thread, release the pins. Idempotent."""
        self.motions.close(timeout)
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
