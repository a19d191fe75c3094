"""RoutingTable: which handlers one message reaches (pure, no broker)."""

from __future__ import annotations

from tars_mqtt.dispatch import Inbound, Subscription
from tars_mqtt.routing import RoutingTable


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
