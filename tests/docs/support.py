"""Markdown code blocks and tables, and running a documented program against mosquitto."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# The files whose python blocks must all be tagged (see tests/docs/__init__.py).
OWNED = ("README.md", "docs/configuration.md", "docs/api.md", "docs/migration.md",
         "docs/extending.md")
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
