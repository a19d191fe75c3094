"""tars-movement's motion thread: one motion at a time on the rig, preempted by a stop.

The handlers (:mod:`services.movement`) decide under :attr:`Motions.lock` and hand a
planned motion over with :meth:`Motions.start`; the thread runs it and reports how it
ended through ``ended`` under the same lock, so status events go out in the order things
happened. Nothing a motion does ends the thread; :meth:`Motions.liveness` says when it is
dead or a motion is far past its planned end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from hw import ServoRig
from tars_mqtt import Message

from .movement_logic import Verdict, must_end_by, overdue
from .text import clean

__all__ = ["Ended", "Motions"]

log = logging.getLogger("tars.movement")
Ended = Callable[[Message, str, str, "str | None"], None]  # (command, event, action, error)


class Motions:
    """The motion thread, the running motion and the stop event."""

    def __init__(self, rig: ServoRig, ended: Ended, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rig, self._ended, self._clock = rig, ended, clock
        self.lock = threading.Lock()  # the running motion, and the order of status events
        self.stop = threading.Event()
        self._running: tuple[str, float] | None = None  # (action, when it must have ended)
        self._idle = threading.Condition(self.lock)
        self._closed = False
        self._jobs: queue.Queue[tuple[Message, Verdict] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._motions, name="tars-movement-motion",
                                        daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether a motion is running (read holding :attr:`lock`)."""
        return self._running is not None

    def start(self, msg: Message, verdict: Verdict) -> None:
        """Run ``verdict``'s motion next; the caller holds :attr:`lock` and saw it idle."""
        self._running = (verdict.action, must_end_by(verdict, self._clock()))
        self.stop.clear()
        self._jobs.put((msg, verdict))

    def _motions(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._run(*job)
            except Exception:  # nothing a job does may end this thread
                log.exception("motion %r: the motion thread carries on", job[1].action)
                with self.lock:
                    self._running = None
                    self._idle.notify_all()

    def _run(self, msg: Message, verdict: Verdict) -> None:
        error = None
        try:
            event = "completed" if self.rig.run_motion(verdict.frames, self.stop) \
                else "stopped"
        except Exception as exc:  # a hardware fault is reported, and the next motion runs
            log.exception("motion %r failed", verdict.action)
            event, error = "failed", clean(str(exc) or type(exc).__name__)
        with self.lock:
            self._running = None
            self._idle.notify_all()
            self._ended(msg, event, verdict.action, error)

    def liveness(self) -> str | None:
        """Why the motion thread is dead or wedged (a motion far past its planned end)."""
        if self._closed:
            return None
        if not self._thread.is_alive():
            return "the motion thread has died"
        with self.lock:
            running = self._running
        return overdue(running, self._clock())

    def halt(self, timeout: float = 5.0) -> None:
        """Stop any motion and wait until it has reported ``stopped`` (at shutdown)."""
        with self._idle:
            self.stop.set()
            self._idle.wait_for(lambda: self._running is None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop any motion and end the thread. Idempotent."""
        self._closed = True
        self.stop.set()
        self._jobs.put(None)
        self._thread.join(timeout)
