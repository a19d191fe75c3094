"""PendingRequests and ReplyHandle: each reply to its own request, nothing kept after."""

from __future__ import annotations

import threading

import pytest

from tars_mqtt import Message, ReplyHandle, RequestTimeout
from tars_mqtt.requests import PendingRequests


def reply(correlate: str | None, text: str = "ok") -> Message:
    return Message(topic="system/reply/me", payload=text.encode(), correlate=correlate)


def test_a_reply_resolves_its_own_handle_only() -> None:
    pending = PendingRequests()
    first, second = pending.open("a", "svc/a"), pending.open("b", "svc/b")

    assert pending.resolve(reply("b", "for b"))

    assert second.wait(1.0).text == "for b" and second.done
    assert second.reply is not None and second.reply.text == "for b"
    assert not first.done and first.reply is None
    assert len(pending) == 1


@pytest.mark.parametrize("correlate", [None, "unknown"])
def test_unmatched_replies_are_refused(correlate: str | None) -> None:
    pending = PendingRequests()
    pending.open("a", "svc/a")
    assert not pending.resolve(reply(correlate))
    assert len(pending) == 1


def test_a_second_reply_to_the_same_request_is_late() -> None:
    pending = PendingRequests()
    pending.open("a", "svc/a")
    assert pending.resolve(reply("a", "first"))
    assert not pending.resolve(reply("a", "duplicate"))


def test_timeout_raises_names_the_topic_and_forgets_the_request() -> None:
    pending = PendingRequests()
    handle = pending.open("a", "svc/x")

    with pytest.raises(RequestTimeout, match="'svc/x'"):
        handle.wait(0.01)

    assert len(pending) == 0
    assert not pending.resolve(reply("a"))  # now late


def test_cancel_forgets_and_is_idempotent() -> None:
    pending = PendingRequests()
    handle = pending.open("a", "svc/a")
    handle.cancel()
    handle.cancel()
    assert len(pending) == 0
    assert not pending.resolve(reply("a"))


def test_no_growth_from_many_timed_out_requests() -> None:
    pending = PendingRequests()
    for i in range(1000):
        with pytest.raises(RequestTimeout):
            pending.open(str(i), "t").wait(0.0)
    assert len(pending) == 0


def test_done_callbacks_run_on_the_reply_or_at_once() -> None:
    """The seam the asyncio twin awaits through."""
    pending = PendingRequests()
    handle = pending.open("a", "svc/a")
    seen: list[ReplyHandle] = []
    handle.add_done_callback(seen.append)
    assert seen == []

    pending.resolve(reply("a", "hello"))
    handle.add_done_callback(seen.append)  # already done: called at once

    assert seen == [handle, handle]
    assert handle.reply is not None and handle.reply.text == "hello"
    assert "replied" in repr(handle) and "svc/a" in repr(handle)


def test_a_reply_resolved_while_the_wait_times_out_is_kept() -> None:
    """The reply was matched (so it is not counted late): the waiter must get it."""
    pending = PendingRequests()
    handle = pending.open("a", "svc/a")
    assert pending.resolve(reply("a", "just in time"))
    handle._event.clear()  # as if the waiter's wait() timed out just before the event was set

    assert handle.wait(0.0).text == "just in time"


def test_threads_each_get_their_own_reply() -> None:
    pending = PendingRequests()
    results: dict[str, str] = {}
    opened = threading.Barrier(9)

    def ask(name: str) -> None:
        handle = pending.open(name, "t")
        opened.wait(5)
        results[name] = handle.wait(5.0).text

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
