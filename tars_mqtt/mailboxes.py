"""What the dispatcher queues: subscriptions, their mailboxes, and one delivery each.

A message that matches several subscriptions becomes one ``Delivery`` in each of their
mailboxes; the ``Inbound`` they share is released (acknowledged, for QoS 1/2) once every
one of them is done with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .envelope import Inbound, Message

__all__ = ["Delivery", "Handler", "Mailbox", "Routed", "Subscription"]

Handler = Callable[[Message], Any]


@dataclass(eq=False)
class Subscription:
    """One handler on one filter; returned by ``subscribe`` and accepted by ``unsubscribe``."""

    filter: str
    handler: Handler
    qos: int = 0
    raw: bool = False
    active: bool = True

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))


class Mailbox:
    """The deliveries waiting for one subscription; owned by at most one worker at a time."""

    __slots__ = ("sub", "items", "scheduled", "wake")

    def __init__(self, sub: Subscription, wake: Callable[[], None] | None = None) -> None:
        self.sub = sub
        self.items: deque[Delivery] = deque()
        self.scheduled = False  # in the ready line, or held by a worker or a feed's consumer
        self.wake = wake  # a feed's: told when work waits, instead of the ready line


class Delivery:
    """One message queued for one subscription."""

    __slots__ = ("box", "inbound", "taken")

    def __init__(self, box: Mailbox, inbound: Inbound) -> None:
        self.box, self.inbound = box, inbound
        self.taken = False  # a worker has it, or drop_oldest dropped it


Routed = tuple[Inbound, list[Subscription]]  # a message and the subscriptions it goes to
