"""Helpers for tests and demos: a real mosquitto on a free loopback port, a manual clock.

No mocked broker: integration tests and the demo talk to this process. ``restart()``
keeps the port and the persistence file, so reconnect and persistent-session tests see
what a robot sees when its broker restarts.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .timing import ManualClock

__all__ = ["MOSQUITTO", "Broker", "ManualClock", "free_port", "wait_for_port"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MAX_QUEUED_BYTES = 64 * 1024 * 1024  # per client: what the broker keeps for one that lags


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    """Poll until something accepts TCP on ``port`` (a condition, not a guess)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


class Broker:
    """One mosquitto process; ``extra`` lines are appended to its config."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = False,
                 extra: str = "") -> None:
        if not Path(MOSQUITTO).exists():
            raise RuntimeError("mosquitto is not installed: run scripts/test.sh, or"
                               " apt-get install -y mosquitto")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"user {getpass.getuser()}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "set_tcp_nodelay true",  # else Nagle holds small acks back ~40 ms
            # mosquitto's default (1000 queued per client) discards acknowledged QoS 1/2
            # messages for a slow or absent subscriber without a word; bound bytes instead.
            "max_queued_messages 0",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        return "\n".join(lines) + "\n" + self.extra + "\n"

    def start(self, timeout: float = 10.0) -> Broker:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start; its log:\n{self.log()}") from None
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate gracefully (SIGTERM; mosquitto saves persistence on the way out)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker dies without a word, as on a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
