"""Failover on a real cluster: two RabbitMQ nodes, the one both clients are on is killed.

The nodes form one cluster as they boot; a mirroring policy covers the MQTT session
queues (without it a session's queue dies with its node, docs/brokers.md). The
subscriber keeps a durable session, so its queue, mirrored, moves to the other node. The
stream and the counting are those of the mosquitto failover test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.failover import KILL_AT, FailoverRun
from tests.support.rabbitmq import Epmd, RabbitMQ, cluster_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MIRROR_MQTT_SESSIONS = '{"ha-mode": "all", "ha-sync-mode": "automatic"}'


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RabbitMQ, RabbitMQ]]:
    epmd = Epmd().start()
    first = RabbitMQ(tmp_path / "first", epmd=epmd, cookie="tars-failover")
    second = RabbitMQ(tmp_path / "second", epmd=epmd, cookie="tars-failover")
    first.extra = second.extra = cluster_config([first, second])
    try:
        first.start()
        second.start()  # joins the first as it boots
        second.ctl("set_policy", "--apply-to", "queues", "mqtt-sessions",
                   "^mqtt-subscription-", MIRROR_MQTT_SESSIONS)
        yield first, second
    finally:
        second.close()
        first.close()
        epmd.stop()


def test_qos1_stream_fails_over_between_two_rabbitmq_nodes_of_one_cluster(
        cluster: tuple[RabbitMQ, RabbitMQ]) -> None:
    first, second = cluster
    with FailoverRun(first.url, second.url, protocol="3.1.1", clean_start=False) as run:
        run.wait_linked()  # the cluster routes between its nodes
        run.start_clients()
        run.stream_until(KILL_AT)
        first.kill()
        result = run.finish("RabbitMQ cluster, mirrored session queue")
        assert result.lost == [], f"lost from a mirrored durable session: {result.lost[:20]}"
