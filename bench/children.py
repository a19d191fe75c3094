"""The parent's handle on one Python child process (a :mod:`bench.workers` role).

It has the same methods as :class:`bench.cclients.CSubscriber` and ``CPublisher``, so
the bench pairs any subscriber with any publisher the same way.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .workers import Channel, PubSpec, SubSpec

__all__ = ["PyChild", "prober"]


@contextlib.contextmanager
def prober(host: str, port: int) -> Iterator[Callable[[str, bytes | str], None]]:
    """A raw paho client in the parent, for probe messages: ``send(topic, payload)``."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect(host, port)
    client.loop_start()

    def send(topic: str, payload: bytes | str) -> None:
        client.publish(topic, payload, qos=0)

    try:
        yield send
    finally:
        client.disconnect()
        client.loop_stop()


class PyChild:
    """One child process running a :mod:`bench.workers` role, with its own result queue."""

    def __init__(self, ctx: Any, target: Callable[..., None], spec: SubSpec | PubSpec,
                 stop: Any, go: Any, handled: Any) -> None:
        self.what = f"{spec.lib} {target.__name__}"
        self.ch = Channel(ctx.Event(), stop, go, ctx.Queue(), handled)
        self.proc = ctx.Process(target=target, args=(spec, self.ch), daemon=True)
        self.proc.start()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ch.ready.wait(0.05):
            if not self.proc.is_alive() or time.monotonic() > deadline:
                self.result(1)  # raises the child's own error when it sent one
                raise TimeoutError(f"{self.what}: not subscribed within {timeout} s")

    def start(self) -> None:
        """The child connects by itself and waits for ``go``."""

    def go(self) -> None:
        self.ch.go.set()

    def finish(self) -> None:
        self.ch.stop.set()

    def ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the child to exit; True once it has."""
        self.proc.join(timeout)
        return not self.proc.is_alive()

    def result(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got: dict[str, Any] = self.ch.results.get(timeout=1)
                break
            except queue.Empty:
                if not self.proc.is_alive() and self.ch.results.empty():
                    raise RuntimeError(f"{self.what}: exited ({self.proc.exitcode})"
                                       " without a result") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.what}: no result within {timeout} s") from None
        if "error" in got:
            raise RuntimeError(got["error"])
        return got

    def close(self) -> None:
        self.ch.stop.set()
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
