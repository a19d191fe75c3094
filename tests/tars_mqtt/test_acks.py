"""Acknowledgements without a broker: typed results, early answers, and which connection
a delivery is acknowledged on."""

from __future__ import annotations

from tars_mqtt.acks import AckBook, DeliveryAcks, PubAck, SubAck
from tars_mqtt.envelope import Inbound


class Sent:
    """Stands in for paho's ``ack(mid, qos)``."""

    def __init__(self) -> None:
        self.acks: list[tuple[int, int]] = []

    def __call__(self, mid: int, qos: int) -> None:
        self.acks.append((mid, qos))


def delivery(acks: DeliveryAcks, mid: int, qos: int) -> Inbound:
    """A message as the transport builds it: on the current link, acknowledged when done."""
    inbound = Inbound("t", b"", qos, False, mid=mid, link=acks.link, on_done=acks.settle)
    acks.received(inbound)
    return inbound


def test_a_delivery_is_acked_on_its_own_link_only() -> None:
    sent = Sent()
    acks = DeliveryAcks(sent)
    acks.connected()
    first, second = delivery(acks, 1, 1), delivery(acks, 2, 1)
    first.release()
    assert sent.acks == [(1, 1)]
    acks.disconnected()
    acks.connected()  # the broker resends 2 on this link if the session was kept
    second.release()
    assert sent.acks == [(1, 1)]


def test_a_pubrel_resent_while_the_handler_runs_is_answered_when_it_is_done() -> None:
    sent = Sent()
    acks = DeliveryAcks(sent)
    acks.connected()
    busy = delivery(acks, 7, 2)
    acks.disconnected()
    acks.connected()
    acks.unknown_pubrel(7)  # the broker's PUBREL again, on the new link
    assert sent.acks == []
    busy.release()
    assert sent.acks == [(7, 2)]


def test_a_pubrel_for_a_message_already_handled_is_answered_at_once() -> None:
    sent = Sent()
    acks = DeliveryAcks(sent)
    acks.connected()
    done = delivery(acks, 9, 2)
    acks.disconnected()
    done.release()  # finished while the link was down: nothing to send it on
    acks.connected()
    acks.unknown_pubrel(9)
    acks.unknown_pubrel(42)  # from a process that is gone: answered too
    assert sent.acks == [(9, 2), (42, 2)]


def test_an_abandoned_delivery_is_never_acked() -> None:
    sent = Sent()
    acks = DeliveryAcks(sent)
    acks.connected()
    left = delivery(acks, 3, 1)
    left.abandon()
    left.release()
    assert sent.acks == []


class Waiter:
    def __init__(self) -> None:
        self.results: list[PubAck] = []

    def settle(self, result: PubAck) -> None:
        self.results.append(result)


def test_an_early_answer_waits_for_its_waiter_and_fail_all_answers_the_rest() -> None:
    book: AckBook[PubAck] = AckBook()
    early, late = Waiter(), Waiter()
    book.settle(5, PubAck())  # the broker was faster than the publisher's bind
    book.bind(5, early)
    book.bind(6, late)
    book.fail_all(PubAck("client stopped"))
    assert early.results == [PubAck()] and late.results == [PubAck("client stopped")]


def test_suback_refused_is_the_first_failure_code() -> None:
    assert SubAck((0, 1)).refused is None
    assert SubAck((1, 0x87, 0x80)).refused == 0x87
    assert SubAck().refused is None
