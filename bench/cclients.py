"""mosquitto's own C clients as a contender, driven from the bench's parent process.

``mosquitto_sub -F '%U %t %p'`` stamps every message with the wall clock when its
callback runs, so the parent reading its output (in chunks, on a thread) adds nothing
to the figures; ``mosquitto_pub -l`` publishes one message per line of its stdin. Both
speak MQTT 5 like the baseline, with 20 messages in flight and ``--nodelay``. The C
subscriber prints instead of decoding JSON: its column is a ceiling, not a peer.

``mosquitto_pub`` reads its stdin only once the broker's CONNACK is in: the publisher
writes one warm-up line (no ``seq``, so every subscriber skips it) and starts the clock
when the pipe is empty, so connecting is not timed. It ends when the process exits,
after it has sent everything (and, at QoS 1, had every ack).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import termios
import threading
import time
from typing import Any

import ujson

from .children import prober
from .workers import PubSpec, SubSpec, padding, read_rss, wire

__all__ = ["CPublisher", "CSubscriber", "available"]

PUB = shutil.which("mosquitto_pub")
SUB = shutil.which("mosquitto_sub")
_TICK = os.sysconf("SC_CLK_TCK")
# an envelope without "seq": every subscriber skips it
WARM_UP = b'{"id":"warmup","type":"bench.warmup","ts":0.0,"source":"bench-pub","data":{}}\n'


def available() -> bool:
    """True when Debian's mosquitto-clients are installed (bench/run.sh installs them)."""
    return bool(PUB and SUB)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc/PID/stat (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _unread(fd: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def _common(spec: SubSpec | PubSpec) -> list[str]:
    return ["-h", spec.host, "-p", str(spec.port), "-V", "5", "-q", str(spec.qos), "--nodelay"]


class CSubscriber:
    """``mosquitto_sub`` on the bench topic (and ``<topic>/ready``, for readiness)."""

    def __init__(self, spec: SubSpec, handled: Any = None) -> None:
        assert SUB is not None, "mosquitto_sub is not installed"
        self.spec, self.handled = spec, handled
        self.offset = time.monotonic() - time.time()  # %U is the wall clock
        self.ready = threading.Event()
        self.count, self.first, self.last = 0, b"", b""
        self.cpu_first, self.rss_idle = 0.0, 0
        self.latencies: list[float] = []
        self.rss: list[tuple[int, int]] = []
        self.proc = subprocess.Popen(
            [SUB, *_common(spec), "-t", spec.topic, "-t", f"{spec.topic}/ready",
             "-F", "%U %t %p"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, name="bench-c-sub", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd, tail = self.proc.stdout.fileno(), b""
        ready = f"{self.spec.topic}/ready".encode()
        mark, latency = self.spec.rss_every, self.spec.latency
        while chunk := os.read(fd, 1 << 16):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                stamp, _, rest = line.partition(b" ")
                topic, _, payload = rest.partition(b" ")
                if topic == ready:
                    self.ready.set()
                elif b'"seq"' in payload:  # not the warm-up line
                    if not self.count:
                        self.first, self.cpu_first = stamp, _cpu_seconds(self.proc.pid)
                    self.count += 1
                    self.last = stamp
                    if latency:
                        sent = ujson.loads(payload)["data"]["sent"]
                        self.latencies.append(float(stamp) + self.offset - sent)
            if self.handled is not None:
                self.handled.value = self.count
            if mark and self.count >= mark:
                self.rss.append((self.count, read_rss(self.proc.pid)["VmRSS"]))
                mark = (self.count // self.spec.rss_every + 1) * self.spec.rss_every

    def wait_ready(self, timeout: float) -> None:
        """Publish a probe to ``<topic>/ready`` every 10 ms until the subscriber prints one."""
        with prober(self.spec.host, self.spec.port) as send:
            deadline = time.monotonic() + timeout
            while not self.ready.wait(0.01):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise TimeoutError(f"mosquitto_sub not subscribed within {timeout} s")
                send(f"{self.spec.topic}/ready", b"ready")
        self.rss_idle = read_rss(self.proc.pid)["VmRSS"]

    def finish(self) -> None:
        """Nothing to tell: :meth:`result` waits for the messages (or a quiet ``idle``)."""

    def result(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + min(timeout, self.spec.limit)
        seen, quiet_since = -1, time.monotonic()
        while self.count < self.spec.expect and time.monotonic() < deadline:
            if self.count != seen:
                seen, quiet_since = self.count, time.monotonic()
            elif time.monotonic() - quiet_since > self.spec.idle:
                break
            time.sleep(0.02)
        cpu, mem = _cpu_seconds(self.proc.pid), read_rss(self.proc.pid)
        self.close()
        return {"count": self.count, "cpu": cpu - self.cpu_first,
                "first": float(self.first or 0) + self.offset,
                "last": float(self.last or 0) + self.offset, "latencies": self.latencies,
                "rss": self.rss, "vmrss_kb": mem["VmRSS"], "vmhwm_kb": mem["VmHWM"],
                "rss_idle": self.rss_idle}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._reader.join(10)


class CPublisher:
    """``mosquitto_pub -l`` fed from a thread: all lines at once, or paced at ``rate``."""

    def __init__(self, spec: PubSpec) -> None:
        assert PUB is not None, "mosquitto_pub is not installed"
        if spec.window:
            raise ValueError("the C publisher cannot follow a subscriber's handled count")
        self.spec = spec
        self.pad = padding(lambda p: len(wire(10_000, p)))  # the newline is not sent
        self.times: dict[str, float] = {}
        self.proc = subprocess.Popen([PUB, *_common(spec), "-M", "20", "-t", spec.topic, "-l"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self._writer = threading.Thread(target=self._write, name="bench-c-pub", daemon=True)
        self._blob = b"" if spec.rate else b"".join(
            wire(seq, self.pad) + b"\n" for seq in range(spec.count))

    def start(self, timeout: float = 10.0) -> None:
        """Return once mosquitto_pub has connected (it has read the warm-up line)."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        os.write(fd, WARM_UP)
        deadline = time.monotonic() + timeout
        while _unread(fd):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise TimeoutError(f"mosquitto_pub did not connect within {timeout} s")
            time.sleep(0.001)

    def go(self) -> None:
        self._writer.start()

    def _write(self) -> None:
        assert self.proc.stdin is not None
        stdin, spec = self.proc.stdin, self.spec
        start = self.times["start"] = time.monotonic()
        if spec.rate:
            for seq in range(spec.count):
                delay = start + seq / spec.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                stdin.write(wire(seq, self.pad) + b"\n")
                stdin.flush()
        else:
            stdin.write(self._blob)
        stdin.close()
        self.proc.wait()
        self.times["end"] = time.monotonic()

    def result(self, timeout: float) -> dict[str, Any]:
        self._writer.join(timeout)
        if "end" not in self.times:
            raise TimeoutError(f"mosquitto_pub did not finish within {timeout} s")
        if self.proc.returncode:
            raise RuntimeError(f"mosquitto_pub exited with {self.proc.returncode}")
        return {"start": self.times["start"], "end": self.times["end"], "sent": self.spec.count}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._writer.is_alive():
            self._writer.join(10)
