"""PendingRequests: matching replies to requests in flight, and forgetting the rest."""

from __future__ import annotations

import threading

import pytest

from tars_mqtt import Message, RequestTimeout
from tars_mqtt.requests import PendingRequests


def reply(correlate: str | None, text: str = "ok") -> Message:
    return Message(topic="system/reply/me", payload=text.encode(), correlate=correlate)


def test_a_reply_fills_its_own_slot_only() -> None:
    pending = PendingRequests()
    first, second = pending.open("a"), pending.open("b")

    assert pending.resolve(reply("b", "for b"))

    assert pending.wait(second, "b", 1.0, "t").text == "for b"
    assert not first.event.is_set()
    assert len(pending) == 1


@pytest.mark.parametrize("correlate", [None, "unknown"])
def test_unmatched_replies_are_refused(correlate: str | None) -> None:
    pending = PendingRequests()
    pending.open("a")
    assert not pending.resolve(reply(correlate))
    assert len(pending) == 1


def test_a_second_reply_to_the_same_request_is_late() -> None:
    pending = PendingRequests()
    pending.open("a")
    assert pending.resolve(reply("a", "first"))
    assert not pending.resolve(reply("a", "duplicate"))


def test_timeout_raises_and_removes_the_slot() -> None:
    pending = PendingRequests()
    slot = pending.open("a")

    with pytest.raises(RequestTimeout, match="'svc/x'"):
        pending.wait(slot, "a", 0.01, "svc/x")

    assert len(pending) == 0
    assert not pending.resolve(reply("a"))  # now late


def test_cancel_forgets_and_is_idempotent() -> None:
    pending = PendingRequests()
    pending.open("a")
    pending.cancel("a")
    pending.cancel("a")
    assert len(pending) == 0
    assert not pending.resolve(reply("a"))


def test_no_growth_from_many_timed_out_requests() -> None:
    pending = PendingRequests()
    for i in range(1000):
        slot = pending.open(str(i))
        with pytest.raises(RequestTimeout):
            pending.wait(slot, str(i), 0.0, "t")
    assert len(pending) == 0


def test_on_reply_is_called_with_the_reply() -> None:
    pending = PendingRequests()
    seen: list[Message] = []
    pending.open("a", on_reply=seen.append)

    pending.resolve(reply("a", "hello"))

    assert [m.text for m in seen] == ["hello"]


def test_a_reply_resolved_while_the_wait_times_out_is_kept() -> None:
    """The reply was matched (so it is not counted late): the waiter must get it."""
    pending = PendingRequests()
    slot = pending.open("a")
    assert pending.resolve(reply("a", "just in time"))
    slot.event.clear()  # as if the waiter's wait() timed out just before the event was set

    assert pending.wait(slot, "a", 0.0, "t").text == "just in time"


def test_threads_each_get_their_own_reply() -> None:
    pending = PendingRequests()
    results: dict[str, str] = {}
    opened = threading.Barrier(9)

    def ask(name: str) -> None:
        slot = pending.open(name)
        opened.wait(5)
        results[name] = pending.wait(slot, name, 5.0, "t").text

    threads = [threading.Thread(target=ask, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    opened.wait(5)
    for i in reversed(range(8)):
        assert pending.resolve(reply(f"r{i}", f"answer {i}"))
    for thread in threads:
        thread.join(5)

    assert results == {f"r{i}": f"answer {i}" for i in range(8)}
    assert len(pending) == 0
