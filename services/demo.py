"""The main demo: TARS's services on mock pins, and a scripted scene through them.

Starts mosquitto on a free loopback port (or uses ``$MQTT_URL``), runs ``movement``,
``wake``, ``memory``, ``llm``, ``router``, ``tts`` and ``stt`` as separate processes on
mock pins, and plays: the wake button is pressed; the user says "please wave"; TARS waves
and says so; the user says "my cat is asleep" and, with no language model set up, the
offline skills answer; "do you remember my cat?", memory is consulted and the streamed
answer spoken; a long press cancels. It prints every message as it flows, the servo
angles and the speech files at the end, then stops everything with SIGTERM. Exit 0 when
every step happened in time, else 1 naming the step.

The speech is real and needs no sound card: espeak-ng speaks the user's lines into
tars-stt's spool directory (:mod:`services.demo_speech`), and tars-tts writes what TARS
says as WAV files. Both are kept in ``$TARS_DEMO_OUTPUT`` (a new temporary directory
by default) and their paths printed. A step's ``{heard}`` is what tars-stt heard in it,
``{earlier}`` what it heard the step before.

``--ui`` also runs ``tars-ui``, prints the page's local URL (``TARS_UI_PORT``, 8770) and,
after the scene, keeps everything up for the page until Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.signals import stop_on_signals
from tars_mqtt.testing import Broker, wait_for_port

from . import topics as t
from .common import env_float, publish
from .demo_speech import Voices
from .skills import NO_MODEL
from .ui.settings import UISettings

SERVICES = ("movement", "wake", "memory", "llm", "router", "tts", "stt")
SERVICE_ENV = {"GPIOZERO_PIN_FACTORY": "mock", "TARS_WAKE_SIMULATE": "1",
               "TARS_WAKE_HOLD_TIME": "0.5", "TARS_ROUTER_LLM_TIMEOUT": "1.5"}
# tars-llm answers offline (its skills) unless TARS_LLM_URL names an endpoint.
Expect = tuple[str, dict[str, Any]]
SCENE: tuple[tuple[str, str, dict[str, Any], tuple[Expect, ...]], ...] = (
    ("the wake button is pressed", "wake/simulate", {"action": "press"}, (
        ("wake/event", {"type": "wake", "source": "button"}),
        ("system/state", {"state": "listening"}))),
    ('the user says "please wave"', "user", {"text": "please wave"}, (
        ("stt/final", {"text": "please wave"}),
        ("system/state", {"state": "thinking"}), ("movement/command", {"action": "wave"}),
        ("movement/status", {"event": "started", "action": "wave"}),
        ("tts/say", {"text": "Okay, waving."}), ("tts/status", {"event": "speaking_start"}),
        ("system/state", {"state": "speaking"}),
        ("movement/status", {"event": "completed", "action": "wave"}),
        ("tts/status", {"event": "speaking_end"}), ("system/state", {"state": "idle"}))),
    ('the user says "my cat is asleep" (no language model set up: offline skills answer)',
     "user", {"text": "my cat is asleep"}, (
        ("stt/final", {}), ("system/state", {"state": "thinking"}),
        ("llm/request", {"text": "{heard}"}),
        ("tts/say", {"text": NO_MODEL}), ("system/state", {"state": "speaking"}),
        ("system/state", {"state": "idle"}))),
    ('the user says "do you remember my cat?": memory is consulted, the answer streams',
     "user", {"text": "do you remember my cat?"}, (
        ("stt/final", {}), ("system/state", {"state": "thinking"}),
        ("llm/request", {"text": "{heard}"}),
        ("memory/query", {"text": "{heard}"}), ("memory/results", {}),
        ("llm/stream", {"seq": 0}),
        ("tts/say", {"text": "I remember that you said: {earlier}"}),
        ("system/state", {"state": "speaking"}))),
    ("the wake button is held (long press)", "wake/simulate", {"action": "hold"}, (
        ("wake/event", {"type": "cancel", "source": "button"}),
        ("tts/control", {"action": "stop"}), ("system/state", {"state": "idle"}))),
)


class Failed(Exception):
    """A step of the scene did not happen in time."""


def short(msg: Message) -> str:
    """The data in one short line (stats and angles left out)."""
    if not isinstance(msg.data, dict):
        return msg.text[:60]
    text = " ".join(f"{k}={v}" for k, v in msg.data.items() if k not in ("stats", "angles"))
    return text if len(text) <= 72 else text[:69] + "..."


class Timeline:
    """Prints every message; waits for the ones a step expects (live ones, not retained)."""

    def __init__(self, t0: float, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        self.t0, self.procs, self.seen = t0, procs, list[Message]()
        self._cond = threading.Condition()

    def on_message(self, msg: Message) -> None:
        source = msg.envelope.source if msg.envelope else "?"
        with self._cond:
            print(f"{time.monotonic() - self.t0:7.3f}s  {source:<9} {msg.topic:<26}"
                  f" {msg.type or '-':<17} {short(msg)}", flush=True)
            self.seen.append(msg)
            self._cond.notify_all()

    def say(self, *lines: str) -> None:
        """The demo's own lines, under the lock the message lines print under: a message
        arriving meanwhile on a worker thread cannot land in the middle of one."""
        with self._cond:
            print("\n".join(lines), flush=True)

    def mark(self) -> int:
        with self._cond:
            return len(self.seen)

    def expect(self, after: int, topic: str, fields: dict[str, Any], timeout: float) -> Message:
        def find() -> Message | None:
            return next((m for m in self.seen[after:] if m.topic == topic and not m.retain
                         and isinstance(m.data, dict)
                         and all(m.data.get(k) == v for k, v in fields.items())), None)

        deadline = time.monotonic() + timeout
        with self._cond:
            while (found := find()) is None:
                dead = [f"{n} exited with code {p.returncode}" for n, p in self.procs.items()
                        if p.poll() is not None]
                if dead or time.monotonic() >= deadline:
                    why = "; ".join(dead) or f"not within {timeout:g} s"
                    raise Failed(f"no {topic} {fields}: {why}")
                self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            return found


def play(url: str, workdir: Path, step_timeout: float, voices: Voices,
         ui: bool = False) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MQTT_CLIENT_ID"}
    env.update(SERVICE_ENV, MQTT_URL=url, TARS_MEMORY_DIR=str(workdir / "memory"))
    env.update(voices.env())
    base = MQTTConfig.from_env(environ=env, client_id="demo")
    quiet = dataclasses.replace(base, enable_health=False, enable_heartbeat=False)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    timeline = Timeline(time.monotonic(), procs)
    with MQTTClient(quiet) as watcher:
        watcher.subscribe("#", timeline.on_message, qos=1)
        mark = timeline.mark()
        failure = None
        try:
            names = (*SERVICES, "ui") if ui else SERVICES
            timeline.say(f"── starting {', '.join(names)} (logs in {workdir})")
            for name in names:
                module = "services.ui.service" if name == "ui" else f"services.{name}"
                with open(workdir / f"{name}.log", "wb") as log:
                    # a session of its own: Ctrl-C reaches the demo only, which then stops
                    # each service once (a second signal would cut a service's stop short)
                    procs[name] = subprocess.Popen([sys.executable, "-m", module],
                                                   env=env, stdout=log, stderr=log,
                                                   start_new_session=True)
            for name in names:
                timeline.expect(mark, f"system/health/{name}", {"event": "ready"}, 30)
            if ui:  # its health says ready once connected; the page is served just after
                page = UISettings.from_env(env)
                wait_for_port(page.port, 15)
                timeline.say(f"── the live view: {page.url}")
            heard = {"heard": "", "earlier": ""}
            for n, (title, topic, data, expects) in enumerate(SCENE, 1):
                timeline.say(f"── step {n}: {title}")
                mark = timeline.mark()
                if topic == "user":
                    timeline.say(f"   (espeak-ng: {voices.say(n, data['text'])})")
                else:
                    publish(watcher, t.spec_for(topic), data)
                for want, fields in expects:
                    fields = {k: v.format(**heard) if isinstance(v, str) else v
                              for k, v in fields.items()}
                    try:
                        found = timeline.expect(mark, want, fields, step_timeout)
                    except Failed as exc:
                        raise Failed(f"step {n} ({title}): {exc}") from None
                    if want == "stt/final":
                        heard = {"heard": found.data["text"], "earlier": heard["heard"]}
            show_angles(timeline)
            timeline.say(*voices.report())
            if ui:
                hold()
        except Failed as exc:
            failure = exc
        finally:  # whatever happened, no service outlives the demo
            timeline.say("── stopping the services (SIGTERM)")
            mark = timeline.mark()
            try:
                stop_all(procs, lambda name: timeline.expect(
                    mark, f"system/health/{name}", {"event": "shutdown"}, 10))
            except Failed as exc:
                extra = "; ".join(p for p in str(exc).split("; ") if p not in str(failure))
                if extra:
                    failure = Failed(f"{failure}; and then: {extra}" if failure else extra)
        if failure is not None:
            raise failure


def hold() -> None:
    """``--ui``: keep the services up for the page until SIGINT (Ctrl-C) or SIGTERM.

    The handlers stay: a second Ctrl-C while the services stop does not cut the stop short
    (it has its own time limits).
    """
    done = threading.Event()
    stop_on_signals(done)  # before saying so: Ctrl-C may come at once
    print("── the scene is over; everything stays up for the page: Ctrl-C ends the demo",
          flush=True)
    while not done.wait(0.5):
        pass


def show_angles(timeline: Timeline) -> None:
    last = [m for m in timeline.seen if m.topic == "movement/status"
            and isinstance(m.data, dict) and "angles" in m.data][-1]
    angles = last.data["angles"].items()
    timeline.say(f"── servo angles at the end (after {last.data['action']} {last.data['event']}):",
                 *(f"     {joint:<13} {angle:7.2f}°" for joint, angle in angles))


def stop_all(procs: dict[str, subprocess.Popen[bytes]],
             said_goodbye: Callable[[str], Message]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    problems = []
    for name, proc in procs.items():
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(15)
        if code != 0:
            problems.append(f"{name} exited with code {code}")
        else:
            try:
                said_goodbye(name)
            except Failed as exc:
                problems.append(f"{name}: {exc}")
    if problems:
        raise Failed("; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(arg != "--ui" for arg in args):
        print(f"usage: scripts/demo.sh [--ui]; not understood: {' '.join(args)}",
              file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="tars-demo-"))
    broker = None
    try:
        output = os.environ.get("TARS_DEMO_OUTPUT", "").strip()
        voices = Voices(workdir, Path(output) if output else
                        Path(tempfile.mkdtemp(prefix="tars-speech-")))
        step_timeout = env_float(os.environ, "TARS_DEMO_STEP_TIMEOUT", 10.0, low=0.5)
        url = os.environ.get("MQTT_URL", "").strip()
        if not url:
            broker = Broker(workdir / "broker").start()
            url = broker.url
        print(f"demo: broker {url}", flush=True)
        play(url, workdir, step_timeout, voices, ui="--ui" in args)
    except Exception as exc:  # every failure ends the same way: the reason, logs, exit 1
        print(f"demo: FAILED: {exc}", file=sys.stderr, flush=True)
        for log in sorted(workdir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"── {log.name} (last lines)\n" + "\n".join(tail), file=sys.stderr)
        return 1
    finally:
        if broker is not None:
            broker.stop()
    print("demo: ok, every step of the scene happened; all services stopped cleanly (exit 0)")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
