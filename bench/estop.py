"""E-stop latency on mock pins: the movement service in a child process, driven over MQTT.

The child runs ``services.movement.Movement`` on a tars_mqtt client (its defaults) and a
``ServoRig`` of the shipped calibration on gpiozero's ``MockFactory``, whose pins stamp
the monotonic time of their last change. The parent, as the router would, publishes a
long ``pose`` on ``movement/command``, waits for ``started``, lets it move for a random
20-100 ms, publishes ``movement/stop`` and measures from that publish:

- **pins still**: to the last change of any servo pin (asked of the child after 50 ms
  without steps). The bench rig steps at 1 kHz instead of the shipped 50 Hz, so the
  figure is resolved to 1 ms; at 50 Hz a stop mostly lands between two steps and this
  would read 0;
- **stopped status**: to the arrival of ``movement/status`` ``stopped`` at the parent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import random
import time
from multiprocessing.context import BaseContext
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPWMPin

from hw import DEFAULT_CALIBRATION_PATH, ServoRig, load_calibration
from services.common import publish
from services.movement import Movement
from services.topics import MOVEMENT_COMMAND, MOVEMENT_STATUS, MOVEMENT_STOP
from tars_mqtt import Message, MQTTClient, MQTTConfig

__all__ = ["StampedPWMPin", "measure", "serve"]

STEP_HZ = 1000.0  # the calibration's maximum: one step per millisecond
SETTLE = 0.05     # no pin change for this long after `stopped`: the rig is still


class StampedPWMPin(MockPWMPin):  # type: ignore[misc]
    """A mock PWM pin that remembers when its value last changed (monotonic seconds)."""

    changed_at = 0.0

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if changed:
            self.changed_at = time.monotonic()
        return changed


def serve(url: str, conn: Any) -> None:
    """Child process: the movement service on stamped mock pins; answers ``last`` with the
    latest pin change, until ``quit``."""
    factory = MockFactory(pin_class=StampedPWMPin)
    calibration = dataclasses.replace(load_calibration(DEFAULT_CALIBRATION_PATH),
                                      step_rate_hz=STEP_HZ)
    rig = ServoRig(calibration, pin_factory=factory)
    pins = [factory.pin(joint.pin) for joint in calibration.joints]
    client = MQTTClient(MQTTConfig(url=url, client_id="bench-movement"))
    service = Movement(client, rig)
    client.start()
    try:
        conn.send("ready")
        while conn.recv() == "last":
            conn.send(max(pin.changed_at for pin in pins))
    finally:
        client.stop()
        service.close()
        factory.close()


def _wait_event(events: queue.Queue[tuple[str, float]], event: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, at = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no movement/status {event!r} within {timeout} s") from None
        if got == event:
            return at


def measure(ctx: BaseContext, url: str, stops: int, seed: int = 0) -> dict[str, list[float]]:
    """``stops`` e-stops against a fresh movement service; seconds per stop."""
    here, there = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(url, there), daemon=True)  # type: ignore[attr-defined]
    proc.start()
    client = MQTTClient(MQTTConfig(url=url, client_id="bench-estop-router"))
    events: queue.Queue[tuple[str, float]] = queue.Queue()

    def on_status(msg: Message) -> None:
        events.put((msg.data.get("event", "") if isinstance(msg.data, dict) else "",
                    time.monotonic()))

    client.subscribe(MOVEMENT_STATUS.name, on_status, qos=MOVEMENT_STATUS.qos)
    client.start()
    rng = random.Random(seed)
    out: dict[str, list[float]] = {"pins": [], "status": []}
    try:
        if not here.poll(30) or here.recv() != "ready":
            raise TimeoutError("the movement service did not start within 30 s")
        for n in range(stops):
            publish(client, MOVEMENT_COMMAND, {"action": "pose", "params": {
                "angles": {"left_arm": 50 if n % 2 else -50}, "duration": 2.0}})
            _wait_event(events, "started", 10)
            time.sleep(rng.uniform(0.02, 0.1))  # moving; the stop lands at a random phase
            sent = time.monotonic()
            publish(client, MOVEMENT_STOP, {"reason": "bench"})
            out["status"].append(_wait_event(events, "stopped", 10) - sent)
            last = -1.0
            while True:  # still = no step for SETTLE (a step would come every 1 ms)
                here.send("last")
                now_last = here.recv()
                if now_last == last:
                    break
                last = now_last
                time.sleep(SETTLE)
            out["pins"].append(max(0.0, last - sent))
        return out
    finally:
        client.stop()
        with contextlib.suppress(OSError):
            here.send("quit")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
