"""Markdown code blocks and tables, and running a documented program against mosquitto."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.install import USERS
from services.topics import TABLE
from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# The files whose python blocks must all be tagged (see tests/docs/__init__.py).
OWNED = ("README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md")))
# Client ids of the robot's own processes: a documented program that took one would
# throw the running service off the broker.
REAL_IDS = frozenset({"movement", "wake", "router", "tts", "stt", "llm", "memory", "ui",
                      *USERS})
# Topics the robot's services act on (the topic table): a documented program sends on
# one only if that is its point, tagged `robot` and saying so.
ROBOT_TOPICS = frozenset(spec.name for spec in TABLE)
RUN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its info string, its text."""

    path: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    lang: str
    tags: tuple[str, ...]
    code: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    def tag_value(self, key: str) -> str | None:
        for tag in self.tags:
            if tag.startswith(key + "="):
                return tag.split("=", 1)[1]
        return None


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`]*)$")


def blocks(relpath: str) -> list[Block]:
    """Every fenced block of a markdown file, in order."""
    found: list[Block] = []
    lines = (ROOT / relpath).read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match.groups()
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        words = info.split()
        found.append(Block(relpath, start + 1, words[0] if words else "", tuple(words[1:]),
                           "\n".join(body) + "\n"))
        i += 1
    return found


def doc_files() -> list[str]:
    """README.md and every docs/*.md, as paths relative to the root."""
    return ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))]


def table(markdown: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose first header cell is ``first_header``."""
    lines = markdown.splitlines()
    for n, line in enumerate(lines):
        cells = _cells(line)
        if cells and cells[0] == first_header:
            rows = []
            for row in lines[n + 2:]:
                if not row.strip().startswith("|"):
                    break
                rows.append(dict(zip(cells, _cells(row), strict=True)))
            return rows
    raise AssertionError(f"no table starting with column {first_header!r}")


def _cells(line: str) -> list[str]:
    line = line.strip()
    if not line.startswith("|"):
        return []
    # split on | that is not escaped (\|), then unescape
    parts = re.split(r"(?<!\\)\|", line.strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level."""
    lines = markdown.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    for n, line in enumerate(lines):
        if line.strip() == heading:
            out = []
            for rest in lines[n + 1:]:
                hashes = len(rest) - len(rest.lstrip("#"))
                if 0 < hashes <= level and rest[hashes:hashes + 1] == " ":
                    break
                out.append(rest)
            return "\n".join(out)
    raise AssertionError(f"no heading {heading!r}")


def program_env(broker: Broker) -> dict[str, str]:
    """The environment a documented program runs in: only MQTT_URL of the MQTT_* set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    env["MQTT_URL"] = broker.url
    env["PYTHONPATH"] = str(ROOT)
    return env


class HealthWatch:
    """Every ``system/health/+`` message, for waiting on a service's ready/shutdown."""

    def __init__(self, broker: Broker, client_id: str = "docs-watch") -> None:
        self.client = MQTTClient(MQTTConfig(url=broker.url, client_id=client_id,
                                            enable_health=False, enable_heartbeat=False))
        self.seen: list[tuple[str, str]] = []  # (client id, event)
        self._cond = threading.Condition()
        self.client.subscribe("system/health/+", self._on, qos=1)
        self.client.start()

    def _on(self, msg: Message) -> None:
        if isinstance(msg.data, dict):
            with self._cond:
                self.seen.append((msg.topic.rsplit("/", 1)[1], str(msg.data.get("event"))))
                self._cond.notify_all()

    def wait(self, event: str, client_id: str | None = None, timeout: float = 20.0,
             after: int = 0) -> str:
        """The id of the first client (from index ``after``) that published ``event``."""
        def pick() -> str | None:
            for cid, ev in self.seen[after:]:
                if ev == event and (client_id is None or cid == client_id):
                    return cid
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: pick() is not None, timeout):
                raise AssertionError(f"no {event!r} health from {client_id or 'anyone'} within"
                                     f" {timeout} s; saw {self.seen}")
            found = pick()
        assert found is not None
        return found

    def mark(self) -> int:
        with self._cond:
            return len(self.seen)

    def stop(self) -> None:
        self.client.stop(timeout=2)


def run_program(path: Path, broker: Broker, *, args: tuple[str, ...] = (),
                timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a program that ends by itself; its exit code, stdout and stderr."""
    try:
        return subprocess.run([sys.executable, str(path), *args], env=program_env(broker),
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{path.name} still running after {timeout} s;"
                             f" stderr:\n{exc.stderr!r}") from None


class ServiceProcess:
    """A program that calls ``run_forever()``: started, waited ready, SIGTERMed."""

    def __init__(self, path: Path, broker: Broker, log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(path)], env=program_env(broker),
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
            raise AssertionError(f"ignored SIGTERM; log:\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class RobotWatch:
    """What a documented program did that would matter next to a running robot.

    Started before the program runs: it sees every client id that publishes health and
    every message on a topic of the robot's table. After the run, :meth:`problems` adds
    the retained health left behind that ``tars-mqtt health`` would judge (anything but a
    clean ``shutdown``).
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.client_ids: set[str] = set()
        self.robot_topics: set[str] = set()
        self._lock = threading.Lock()
        self._marker = f"docs/robot-watch/{uuid.uuid4().hex[:8]}"
        self._caught_up = threading.Event()
        self.client = MQTTClient(MQTTConfig(url=broker.url, client_id="docs-robot-watch",
                                            enable_health=False, enable_heartbeat=False))
        self.client.subscribe("#", self._on, qos=1, raw=True)
        self.client.start()

    def _on(self, msg: Message) -> None:
        if msg.topic == self._marker:
            self._caught_up.set()
            return
        with self._lock:
            if msg.topic.startswith("system/health/"):
                self.client_ids.add(msg.topic.split("/", 2)[2])
            if msg.topic in ROBOT_TOPICS:
                self.robot_topics.add(msg.topic)

    def stop(self) -> None:
        self.client.stop(timeout=2)

    def catch_up(self) -> None:
        """Return once every message the broker routed so far has been through the handler.

        The program's messages reached the broker before it exited; a marker published
        now comes after them on the watch's one ordered subscription.
        """
        self._caught_up.clear()
        self.client.publish(self._marker, b"marker", qos=1).wait(5)
        assert self._caught_up.wait(10), "the watch's marker never came back"

    def retained_health(self) -> dict[str, str]:
        """Client id -> event of every retained health now on the broker.

        A non-retained marker published after subscribing comes after every retained
        message (the broker sends those right after the SUBACK, on one ordered link, and
        one subscription hands messages over in order): once it is in, all are.
        """
        marker = f"docs-marker-{uuid.uuid4().hex[:8]}"
        found: dict[str, str] = {}
        done = threading.Event()

        def on_health(msg: Message) -> None:
            client_id = msg.topic.split("/", 2)[2]
            if client_id == marker:
                done.set()
            elif msg.retain:
                found[client_id] = (str(msg.data.get("event")) if isinstance(msg.data, dict)
                                    else repr(msg.payload[:40]))

        with MQTTClient(MQTTConfig(url=self.broker.url, client_id="docs-retained",
                                   enable_health=False, enable_heartbeat=False)) as reader:
            reader.subscribe("system/health/+", on_health, qos=1, raw=True)
            reader.publish(f"system/health/{marker}", b"marker", qos=1).wait(5)
            assert done.wait(10), "the marker never came back"
        return found

    def problems(self, *, robot: bool = False, own: frozenset[str] = frozenset()) -> list[str]:
        """What is wrong; ``robot``: the program is meant to talk to the robot's services.

        ``own`` are the test's own client ids (left out).
        """
        self.catch_up()
        out = []
        with self._lock:
            taken = sorted(self.client_ids & REAL_IDS)
            sent = sorted(self.robot_topics)
        if taken:
            out.append(f"took a real service's client id: {taken}")
        if sent and not robot:
            out.append(f"sent on the robot's topics {sent} without saying it is meant to")
        left = {cid: ev for cid, ev in self.retained_health().items()
                if ev != "shutdown" and cid not in own}
        if left:
            out.append(f"left retained health that `tars-mqtt health` judges: {left}")
        return out
