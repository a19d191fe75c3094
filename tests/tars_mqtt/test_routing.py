"""RoutingTable: which handlers one message reaches (pure, no broker)."""

from __future__ import annotations

import pytest

from tars_mqtt.envelope import Inbound
from tars_mqtt.mailboxes import Subscription
from tars_mqtt.routing import Route, RoutingTable, filters_overlap


def _sub(topic_filter: str, qos: int = 0) -> Subscription:
    return Subscription(topic_filter, lambda msg: None, qos)


def _inbound(topic: str) -> Inbound:
    return Inbound(topic, b"{}", 0, False)


def test_one_route_per_filter_and_resubscribe_only_for_a_higher_qos() -> None:
    table = RoutingTable()
    first, send_first = table.add(_sub("a/#", 0))
    second, send_second = table.add(_sub("a/#", 0))
    third, send_third = table.add(_sub("a/#", 1))
    assert first is second is third
    assert (send_first, send_second, send_third) == (True, False, True)
    assert first.qos == 1 and len(first.subs) == 3


def test_v5_ids_pick_the_route_and_filters_are_the_fallback() -> None:
    table = RoutingTable()
    hash_sub, plus_sub = _sub("a/#"), _sub("a/+")
    hash_route, _ = table.add(hash_sub)
    table.add(plus_sub)
    assert table.route(_inbound("a/b"), [hash_route.sub_id]) == [hash_sub]
    assert set(map(id, table.route(_inbound("a/b"), None))) == {id(hash_sub), id(plus_sub)}
    assert table.route(_inbound("a/b"), [999]) != []  # unknown id: match by filter


def test_internal_routes_run_here_and_user_handlers_still_get_the_message() -> None:
    table = RoutingTable()
    seen: list[str] = []
    table.add_internal("system/reply/me", lambda inbound: seen.append(inbound.topic))
    user = _sub("system/#")
    table.add(user)
    assert table.route(_inbound("system/reply/me"), None) == [user]
    assert seen == ["system/reply/me"]
    same = _sub("system/reply/me")
    table.add(same)
    assert {id(s) for s in table.route(_inbound("system/reply/me"), None)} == {id(user), id(same)}
    assert seen == ["system/reply/me"] * 2


def test_remove_returns_the_filter_only_when_its_last_handler_goes() -> None:
    table = RoutingTable()
    a, b = _sub("x/y"), _sub("x/y")
    table.add(a)
    table.add(b)
    assert table.remove(a) is None and not a.active and b.active
    assert table.remove(b) == "x/y"
    assert table.get("x/y") is None and table.routes == ()
    assert table.remove("x/y") is None


def test_removing_user_handlers_keeps_an_internal_route() -> None:
    table = RoutingTable()
    table.add_internal("system/keepalive/me", lambda inbound: None)
    table.add(_sub("system/keepalive/me"))
    assert table.remove("system/keepalive/me") is None
    assert table.get("system/keepalive/me") is not None


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("a/b", "a/b", True),
    ("a/b", "a/c", False),
    ("a/+", "a/b", True),
    ("a/+", "+/b", True),
    ("a/+", "a/b/c", False),
    ("a/+", "a", False),
    ("a/#", "a", True),  # '#' also matches the parent level
    ("a/#", "a/b/c", True),
    ("a/b/#", "a", False),
    ("a/b/#", "a/c/#", False),
    ("#", "x/y", True),
    ("+/+", "a/b/c", False),
    ("+/+/#", "a", False),
    ("a//b", "a/+/b", True),  # '+' matches an empty level
    ("#", "$SYS/x", False),  # a leading wildcard never matches a '$' topic
    ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/+", True),
    ("$SYS/x", "$OTHER/x", False),
])
def test_filters_overlap(a: str, b: str, overlap: bool) -> None:
    assert filters_overlap(a, b) is overlap
    assert filters_overlap(b, a) is overlap


class _Sent:
    """The table's ``send``: what would go to the broker, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int | None, bool]] = []

    def __call__(self, route: Route, again: bool) -> None:
        self.log.append((route.filter, route.sub_id, again))


def test_ids_only_while_filters_overlap_and_existing_routes_get_theirs_first() -> None:
    sent = _Sent()
    table = RoutingTable(sent)
    plus, _ = table.add(_sub("a/+"))
    other, _ = table.add(_sub("b/c"))
    assert plus.sub_id is None and other.sub_id is None
    assert sent.log == [("a/+", None, False), ("b/c", None, False)]
    sent.log.clear()
    hash_route, _ = table.add(_sub("a/#"))
    assert plus.sub_id is not None and hash_route.sub_id is not None and other.sub_id is None
    # 'a/+' is re-subscribed with its id (no retained resend) before 'a/#' goes out.
    assert sent.log == [("a/+", plus.sub_id, True), ("a/#", hash_route.sub_id, False)]
    sent.log.clear()
    table.replay()
    assert sent.log == [("a/+", plus.sub_id, False), ("b/c", None, False),
                        ("a/#", hash_route.sub_id, False)]


def test_internal_routes_count_as_overlaps() -> None:
    sent = _Sent()
    table = RoutingTable(sent)
    reply, _ = table.add_internal("system/reply/me", lambda inbound: None)
    user, _ = table.add(_sub("system/#"))
    assert reply.sub_id is not None and user.sub_id is not None
    assert sent.log[1:] == [("system/reply/me", reply.sub_id, True),
                            ("system/#", user.sub_id, False)]


def test_removing_the_overlap_drops_the_id_and_late_copies_of_the_removed_route() -> None:
    sent = _Sent()
    table = RoutingTable(sent)
    keep, gone = _sub("a/+"), _sub("a/#")
    keep_route, _ = table.add(keep)
    gone_route, _ = table.add(gone)
    old_id, gone_id = keep_route.sub_id, gone_route.sub_id
    assert old_id is not None and gone_id is not None
    sent.log.clear()
    assert table.remove(gone) == "a/#"
    assert keep_route.sub_id is None
    assert sent.log == [("a/+", None, True)]
    assert table.route(_inbound("a/b"), [gone_id]) is None  # its own copy still comes via a/+
    assert table.route(_inbound("a/b"), [old_id]) == [keep]  # in flight before the change
    assert table.route(_inbound("a/b"), None) == [keep]


def test_no_ids_without_mqtt5() -> None:
    sent = _Sent()
    table = RoutingTable(sent, ids=False)
    table.add(_sub("a/+"))
    table.add(_sub("a/#"))
    assert sent.log == [("a/+", None, False), ("a/#", None, False)]
