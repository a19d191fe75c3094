"""Services as real processes against a real mosquitto, and a recorder of what they say.

Shared by the service and chaos tests: :class:`Service` runs ``python -m services.<name>``
(optionally under a test-owned ``NOTIFY_SOCKET``, as systemd runs it), :class:`Recorder`
keeps every message on ``#`` and waits for the one a test names, and
:func:`raw_envelope` builds an envelope by hand, as a hostile client would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tars_mqtt import Message, MQTTClient
from tars_mqtt.testing import Broker
from tests.services.test_sdnotify import NotifyListener

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


def raw_envelope(data: Any, *, event_type: str = "test.hostile", **fields: Any) -> bytes:
    """An envelope as bytes, any field overridden; ``json.dumps`` escapes lone surrogates,
    so an id of ``"\\ud800"`` arrives as valid JSON that no UTF-8 encoder can send back."""
    wire = {"id": uuid.uuid4().hex, "type": event_type, "ts": time.time(), "source": "hostile",
            "data": data, **fields}
    return json.dumps(wire).encode()


class Recorder:
    """Every message on ``#``, and waits for the one a predicate picks."""

    def __init__(self, client: MQTTClient) -> None:
        self.client = client
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        client.subscribe("#", self._on, qos=1)

    def _on(self, msg: Message) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait(self, topic: str, timeout: float = TIMEOUT, after: int = 0,
             sender: str | None = None, **fields: Any) -> Message:
        """The first message on ``topic`` (from index ``after``, from ``sender`` when given)
        whose data has ``fields``."""
        return self.wait_many(topic, 1, timeout, after, sender, **fields)[0]

    def wait_many(self, topic: str, count: int, timeout: float = TIMEOUT, after: int = 0,
                  sender: str | None = None, correlate: str | None = None,
                  **fields: Any) -> list[Message]:
        """The first ``count`` messages :meth:`wait` would match (correlated to
        ``correlate`` when given), once that many came."""
        def match(m: Message) -> bool:
            return (m.topic == topic and isinstance(m.data, dict)
                    and (sender is None or (m.envelope is not None
                                            and m.envelope.source == sender))
                    and (correlate is None or m.correlate == correlate)
                    and all(m.data.get(k) == v for k, v in fields.items()))

        found: list[Message] = []

        def check() -> bool:
            found[:] = [m for m in self.messages[after:] if match(m)]
            return len(found) >= count

        with self._cond:
            if not self._cond.wait_for(check, timeout):
                seen = [(m.topic, m.data) for m in self.messages[after:]
                        if not m.topic.startswith("system/keepalive")]
                raise AssertionError(f"{len(found)} of {count} {topic} {fields} within"
                                     f" {timeout} s; saw {seen}")
        return found[:count]

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def on(self, topic: str, after: int = 0) -> list[Any]:
        with self._cond:
            return [m.data for m in self.messages[after:] if m.topic == topic]


class Service:
    """``python -m services.<name>`` with its output in a log file."""

    def __init__(self, name: str, broker: Broker | str, log_dir: Path, **env: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        url = broker if isinstance(broker, str) else broker.url
        environ = {**os.environ, "MQTT_URL": url, "GPIOZERO_PIN_FACTORY": "mock",
                   "MQTT_HEARTBEAT_INTERVAL": "0.5", "TARS_LOG_LEVEL": "INFO", **env}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT,
                                         env=environ, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM and the exit code (killed after TIMEOUT s, then it is an error)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
            raise AssertionError(f"{self.name} ignored SIGTERM; log:\n{self.log()}") from None


class Pings:
    """A test-owned ``NOTIFY_SOCKET`` read all the time, as systemd reads it, so nothing
    the service says is lost to a full queue (a "wedged" between two checks included)."""

    def __init__(self) -> None:
        self.listener = NotifyListener()
        self.seen: list[dict[str, str]] = []
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._read, name="test-notify", daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        """What systemd gives a ``Type=notify`` service with a watchdog (pings every 0.2 s)."""
        return notify_env(self.listener)

    def _read(self) -> None:
        while not self._closing.is_set():
            message = self.listener.receive(0.2)
            if message is not None:
                with self._cond:
                    self.seen.append(message)
                    self._cond.notify_all()

    def still_live(self, name: str, count: int = 3, timeout: float = 10.0) -> None:
        """``count`` fresh watchdog pings, and never a "wedged" status since the start."""
        with self._cond:
            start = len(self.seen)
            fresh = self._cond.wait_for(lambda: sum(
                m.get("WATCHDOG") == "1" for m in self.seen[start:]) >= count, timeout)
            wedged = [m for m in self.seen if m.get("STATUS", "").startswith("wedged")]
        assert not wedged, f"{name}: {wedged}"
        assert fresh, f"{name}: no {count} watchdog pings within {timeout} s"

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)
        self.listener.close()


def notify_env(listener: NotifyListener) -> dict[str, str]:
    """The environment systemd gives a ``Type=notify`` service with a watchdog (pings 0.2 s)."""
    return {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "400000"}


def still_live(listener: NotifyListener, name: str = "the service") -> None:
    """Fresh watchdog pings (the ones already waiting are read first), and never "wedged"."""
    while listener.receive(0.001) is not None:
        pass
    listener.expect_pings(3)
    wedged = [m for m in listener.seen if m.get("STATUS", "").startswith("wedged")]
    assert wedged == [], f"{name}: {wedged}"



def raw_request(broker: Broker, rec: Recorder, topic: str, data: Any,
                correlation: str) -> Message:
    """Send ``data`` in a raw envelope (:func:`raw_envelope`) as a plain MQTT 5 client would,
    its reply topic and correlation data in the MQTT 5 properties; the reply that comes."""
    from tests.integration.test_request_reply import RawV5

    name = f"raw-{uuid.uuid4().hex[:8]}"
    raw = RawV5(broker, name)
    try:
        raw.publish(topic, raw_envelope(data), correlation=correlation.encode(),
                    response_topic=f"system/reply/{name}")
        return rec.wait(f"system/reply/{name}")
    finally:
        raw.close()
