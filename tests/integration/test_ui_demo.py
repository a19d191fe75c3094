"""``scripts/demo.sh --ui``: the scene plays with the web view up on a printed local URL.

The demo runs as a process; the test reads its output line by line (waiting for each
line it needs), fetches the printed URL, reads the page's first WebSocket frame, then
ends the demo with Ctrl-C (SIGINT to its whole process group, twice) and expects a clean
exit.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tars_mqtt.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 40.0


class Output:
    """The demo's stdout, line by line, from a reader thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line)
        self._queue.put(None)  # the end of the output

    def wait_for(self, pattern: str) -> re.Match[str]:
        while True:
            try:
                line = self._queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}: {self.lines}") from None
            if line is None:
                raise AssertionError(f"the demo ended without {pattern!r}: {self.lines}")
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found

    def rest(self) -> str:
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            self.lines.append(line)
        return "".join(self.lines)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_with_ui_prints_the_url_serves_the_page_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "TARS_"))}
    env.update(GPIOZERO_PIN_FACTORY="mock", TMPDIR=str(tmp_path), TARS_UI_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "services.demo", "--ui"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group, as in a terminal
    out = Output(proc)
    try:
        url = out.wait_for(r"── the live view: (http://127\.0\.0\.1:\d+/)")[1]
        assert url == f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and "TARS — live view" in page.read().decode()
        out.wait_for("the scene is over; everything stays up for the page: Ctrl-C")
        hello = asyncio.run(first_frame(url))
        said = [e["text"] for e in hello["conversation"] if e["who"] == "said"]
        assert "Okay, waving." in said  # the scene, as the page shows it
        assert {r["client"]: r["state"] for r in hello["health"]}["movement"] == "ready"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the demo and its services get it
        os.killpg(proc.pid, signal.SIGINT)  # pressed twice: the stop is not cut short
        assert proc.wait(TIMEOUT) == 0, out.rest()
        rest = out.rest()
        assert re.search(r"ui\s+system/health/ui\s+system\.health\s+ok=False event=shutdown",
                         rest), rest
        assert "demo: ok" in rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(TIMEOUT)


async def first_frame(url: str) -> Any:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url.replace("http", "ws") + "ws") as ws:
        return await ws.receive_json(timeout=10)


def test_the_demo_refuses_arguments_it_does_not_know() -> None:
    done = subprocess.run([sys.executable, "-m", "services.demo", "--uii"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "not understood: --uii" in done.stderr

