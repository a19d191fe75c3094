"""Topic validation and wildcard matching (MQTT 4.7), the system topic names."""

from __future__ import annotations

import pytest

from tars_mqtt.topics import (
    health_topic,
    keepalive_topic,
    matches,
    reply_topic,
    validate_filter,
    validate_topic,
)


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), [
    ("a/b", "a/b", True),
    ("a/b", "a/c", False),
    ("a/b", "a/b/c", False),
    ("a/+", "a/b", True),
    ("a/+", "a/b/c", False),
    ("a/+", "a", False),
    ("a/+", "a/", True),  # an empty level is still a level
    ("+/b", "a/b", True),
    ("+/+", "a/b", True),
    ("+", "a", True),
    ("+", "a/b", False),
    ("a/#", "a", True),  # '#' also matches the parent level
    ("a/#", "a/b", True),
    ("a/#", "a/b/c/d", True),
    ("a/#", "b/a", False),
    ("#", "a/b/c", True),
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a/b/d", False),
    ("a/+/#", "a/b", True),
    ("a/+/#", "a/b/c/d", True),
    ("#", "$SYS/broker/uptime", False),  # MQTT 4.7.2
    ("+/broker/uptime", "$SYS/broker/uptime", False),
    ("$SYS/#", "$SYS/broker/uptime", True),
    ("A/b", "a/b", False),  # case sensitive
    ("/a", "/a", True),
    ("+/a", "/a", True),
])
def test_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("good", ["a", "a/b/c", "+", "#", "a/+/c", "a/#", "+/+/#", "/"])
def test_valid_filters(good: str) -> None:
    assert validate_filter(good) == good


@pytest.mark.parametrize(("bad", "why"), [
    ("", "must not be empty"),
    ("a/#/b", "'#' must be a whole, last level"),
    ("a#", "'#' must be a whole, last level"),
    ("a/b+", "'\\+' must be a whole level"),
    ("a\x00b", "must not contain NUL"),
    ("x" * 65536, "longer than 65535 bytes"),
])
def test_invalid_filters(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_filter(bad)


@pytest.mark.parametrize(("bad", "why"), [
    ("", "must not be empty"),
    ("a/+", "must not contain wildcards"),
    ("a/#", "must not contain wildcards"),
    ("a\x00", "must not contain NUL"),
    ("é" * 40000, "longer than 65535 bytes"),
])
def test_invalid_topics(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_topic(bad)


def test_system_topics() -> None:
    assert health_topic("wake") == "system/health/wake"
    assert keepalive_topic("wake") == "system/keepalive/wake"
    assert reply_topic("wake") == "system/reply/wake"
