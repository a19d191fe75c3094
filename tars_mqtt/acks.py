"""The broker's answers to what the client sent, typed, and matched to whoever waits.

paho reports a PUBACK/PUBCOMP and a SUBACK by message id on its network thread. Each kind
has its own result type and its own book, so a waiter gets exactly the answer it asked
for and nothing tells results apart at run time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["AckBook", "PubAck", "SubAck", "Waiter"]


@dataclass(frozen=True)
class PubAck:
    """A publish is done: written (QoS 0) or acknowledged (QoS 1/2); ``error`` if it failed."""

    error: str | None = None


@dataclass(frozen=True)
class SubAck:
    """The broker's reason codes for one SUBSCRIBE; 0x80 and above are refusals."""

    codes: tuple[int, ...] = ()

    @property
    def refused(self) -> int | None:
        """The first refusal code, or None when every filter was granted."""
        return next((code for code in self.codes if code >= 0x80), None)


R = TypeVar("R", PubAck, SubAck)
R_contra = TypeVar("R_contra", PubAck, SubAck, contravariant=True)


class Waiter(Protocol[R_contra]):
    def settle(self, result: R_contra) -> None: ...


class AckBook(Generic[R]):
    """Matches paho's answers to whoever waits on that message id.

    An answer can arrive (on the network thread) before the sender has registered its id,
    so an early result is parked until ``bind`` collects it. No lock of ours is held while
    calling a waiter, which keeps paho's own locks free of deadlock with ours.
    """

    _EARLY_LIMIT = 10000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, Waiter[R]] = {}
        self._early: OrderedDict[int, R] = OrderedDict()

    def bind(self, mid: int, waiter: Waiter[R]) -> None:
        with self._lock:
            if mid in self._early:
                result = self._early.pop(mid)
            else:
                self._waiting[mid] = waiter
                return
        waiter.settle(result)

    def settle(self, mid: int, result: R) -> None:
        with self._lock:
            waiter = self._waiting.pop(mid, None)
            if waiter is None:
                self._early[mid] = result
                while len(self._early) > self._EARLY_LIMIT:
                    self._early.popitem(last=False)
                return
        waiter.settle(result)

    def fail_all(self, result: R) -> None:
        """Answer everyone still waiting with ``result`` (the client stopped)."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.settle(result)
