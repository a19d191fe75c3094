"""services.sdnotify's datagrams, and services.runtime.serve()'s watchdog on a scripted client.

A real Unix datagram socket stands in for systemd (``NotifyListener``, also used by
tests/integration/test_notify.py); the client here is a fake whose liveness the test
scripts, so "pings stop while wedged" is checked without a broker or a clock.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from socket import AF_UNIX, SOCK_DGRAM, socket
from typing import cast

import pytest

from services.runtime import DEFAULT_HANDLER_LIMIT, EXIT_CONFIG, handler_limit_from_env, serve
from services.sdnotify import Notifier
from tars_mqtt import ConfigError, ConnectError, MQTTClient, MQTTConfig

Datagram = dict[str, str]


class NotifyListener:
    """A test-owned ``NOTIFY_SOCKET``: a bound Unix datagram socket that parses messages."""

    def __init__(self, *, abstract: bool = False) -> None:
        self.sock = socket(AF_UNIX, SOCK_DGRAM)
        self._dir: str | None = None
        if abstract:
            name = f"tars-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:  # a short path: sun_path holds 108 bytes, pytest's tmp_path can be longer
            self._dir = tempfile.mkdtemp(prefix="tars-notify-", dir="/tmp")
            self.address = os.path.join(self._dir, "notify")
            self.sock.bind(self.address)
        self.seen: list[Datagram] = []

    def receive(self, timeout: float) -> Datagram | None:
        """The next datagram, or None after ``timeout`` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            raw = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = dict(line.split("=", 1) for line in raw.decode().splitlines() if "=" in line)
        self.seen.append(message)
        return message

    def expect(self, predicate: Callable[[Datagram], bool], what: str,
               timeout: float = 10.0) -> Datagram:
        """Read until a datagram satisfies ``predicate``; fail naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(min(left, 0.5))
            if message is not None and predicate(message):
                return message
        raise AssertionError(f"no {what} within {timeout} s; last datagrams: {self.seen[-8:]}")

    def expect_pings(self, count: int, timeout: float = 10.0) -> None:
        for i in range(count):
            self.expect(lambda m: m.get("WATCHDOG") == "1", f"WATCHDOG=1 #{i + 1}", timeout)

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    sock = NotifyListener()
    yield sock
    sock.close()


# Notifier ---------------------------------------------------------------------------------
def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    notifier.ready("ok")
    notifier.watchdog()
    notifier.stopping()


def test_sends_one_datagram_per_message(listener: NotifyListener) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": listener.address})
    assert notifier.enabled
    notifier.ready("connected")
    notifier.watchdog()
    notifier.send(STATUS="two\nlines")
    notifier.stopping()
    got = [listener.receive(5.0) for _ in range(4)]
    assert got == [{"READY": "1", "STATUS": "connected"}, {"WATCHDOG": "1"},
                   {"STATUS": "two lines"}, {"STOPPING": "1"}]


def test_abstract_namespace_socket() -> None:
    abstract = NotifyListener(abstract=True)
    try:
        assert abstract.address.startswith("@")
        Notifier(environ={"NOTIFY_SOCKET": abstract.address}).ready()
        assert abstract.receive(5.0) == {"READY": "1"}
    finally:
        abstract.close()


def test_a_missing_socket_is_logged_once_and_never_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": "/nonexistent/tars-notify"})
    with caplog.at_level(logging.WARNING, logger="tars.services"):
        for _ in range(3):
            notifier.watchdog()
    failures = [r for r in caplog.records if "sd_notify" in r.getMessage()]
    assert len(failures) == 1
    assert "/nonexistent/tars-notify" in failures[0].getMessage()


def test_a_supervisor_that_does_not_read_costs_pings_never_a_frozen_service(
        listener: NotifyListener, caplog: pytest.LogCaptureFixture) -> None:
    """A Unix datagram queue holds a few messages (net.unix.max_dgram_qlen, often 10);
    beyond, a blocking send would wait for the reader for ever."""
    notifier = Notifier(environ={"NOTIFY_SOCKET": listener.address})

    def ping() -> None:
        for _ in range(200):
            notifier.watchdog()

    sender = threading.Thread(target=ping, daemon=True)
    with caplog.at_level(logging.WARNING, logger="tars.services"):
        sender.start()
        sender.join(30)
    assert not sender.is_alive(), "a send blocked on the full notify socket"
    assert listener.receive(1.0) == {"WATCHDOG": "1"}  # the ones that fitted arrived
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1


@pytest.mark.parametrize(("env", "interval"), [
    ({"WATCHDOG_USEC": "400000"}, 0.2),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec(env: dict[str, str],
                                                      interval: float | None) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": "/run/x", **env})
    if interval is None:
        assert notifier.watchdog_interval is None
    else:
        assert notifier.watchdog_interval == pytest.approx(interval)


def test_handler_limit_from_env() -> None:
    assert handler_limit_from_env({}) == DEFAULT_HANDLER_LIMIT
    assert handler_limit_from_env({"TARS_HANDLER_LIMIT": "2.5"}) == 2.5
    for bad in ("soon", "0", "-1", "inf"):
        with pytest.raises(ConfigError, match="TARS_HANDLER_LIMIT"):
            handler_limit_from_env({"TARS_HANDLER_LIMIT": bad})


# serve() with a scripted client -----------------------------------------------------------
class ScriptedClient:
    """Just what serve() uses of MQTTClient; the test sets ``problem`` and ``start_errors``."""

    def __init__(self, start_errors: list[Exception] | None = None) -> None:
        self.config = MQTTConfig(url="mqtt://127.0.0.1:1", client_id="scripted")
        self.start_errors = list(start_errors or [])
        self.problem: str | None = None
        self.started = self.stopped = False
        self.fatal_error: ConnectError | None = None
        self.checks = 0
        self.checked = threading.Condition()

    @property
    def state(self) -> str:
        return "stopped" if self.stopped else "running" if self.started else "new"

    def start(self, timeout: float = 10.0) -> None:
        if self.start_errors:
            raise self.start_errors.pop(0)
        self.started = True

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped = True

    def liveness_problem(self, handler_limit: float = 30.0) -> str | None:
        with self.checked:
            self.checks += 1
            self.checked.notify_all()
        return self.problem

    def wait_checks(self, n: int, timeout: float = 10.0) -> None:
        with self.checked:
            target = self.checks + n
            assert self.checked.wait_for(lambda: self.checks >= target, timeout)


def _serve_in_thread(client: ScriptedClient, listener: NotifyListener,
                     usec: int = 100_000) -> tuple[threading.Thread, threading.Event, list[int]]:
    stop = threading.Event()
    result: list[int] = []
    notifier = Notifier(environ={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": str(usec)})
    thread = threading.Thread(target=lambda: result.append(serve(
        cast(MQTTClient, client), handler_limit=1.0, notifier=notifier, stop=stop)))
    thread.start()
    return thread, stop, result


def test_pings_stop_while_wedged_and_resume_after(listener: NotifyListener,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    client = ScriptedClient()
    caplog.set_level(logging.INFO, logger="tars.services")
    thread, stop, result = _serve_in_thread(client, listener)
    try:
        listener.expect(lambda m: m.get("READY") == "1", "READY=1")
        assert client.started
        listener.expect_pings(3)

        client.problem = "tars-mqtt-worker-1 has been in one handler for 9.0 s"
        status = listener.expect(lambda m: "STATUS" in m, "STATUS=wedged")
        assert status["STATUS"].startswith("wedged: tars-mqtt-worker-1")
        client.wait_checks(5)  # five more looks at a wedged client ...
        while (message := listener.receive(0.05)) is not None:
            assert message.get("WATCHDOG") != "1", "pinged while wedged"  # ... and no ping
        wedged_logs = [r for r in caplog.records if "wedged" in r.getMessage()]
        assert len(wedged_logs) == 1, "the problem is logged once, not every interval"

        client.problem = None
        listener.expect(lambda m: m.get("STATUS") == "running", "STATUS=running")
        listener.expect_pings(2)
    finally:
        stop.set()
        thread.join(10)
    listener.expect(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
    assert result == [0]
    assert client.stopped


def test_refused_credentials_exit_with_ex_config(listener: NotifyListener) -> None:
    client = ScriptedClient([ConnectError("refused: Not authorized (0x87)",
                                          reason="not_authorized", reason_code=0x87)])
    thread, stop, result = _serve_in_thread(client, listener)
    thread.join(10)
    assert result == [EXIT_CONFIG]
    assert not any(m.get("READY") for m in listener.seen)


def test_waits_for_an_unreachable_broker(listener: NotifyListener) -> None:
    client = ScriptedClient([ConnectError("broker 127.0.0.1:1 is unreachable",
                                          reason="unreachable")])
    thread, stop, result = _serve_in_thread(client, listener)
    try:
        waiting = listener.expect(lambda m: "STATUS" in m, "STATUS=waiting")
        assert "waiting for the broker" in waiting["STATUS"]
        listener.expect(lambda m: m.get("READY") == "1", "READY=1 after the retry")
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]
