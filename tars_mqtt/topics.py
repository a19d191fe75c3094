"""Topic names and filters: validation, wildcard matching, and the system topics."""

from __future__ import annotations

__all__ = [
    "health_topic",
    "keepalive_topic",
    "matches",
    "reply_topic",
    "validate_filter",
    "validate_qos",
    "validate_topic",
]


def validate_topic(topic: str) -> str:
    """A topic to publish on: non-empty, no wildcards, no NUL, at most 65535 bytes."""
    if not topic:
        raise ValueError("topic must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError(f"topic {topic!r} must not contain wildcards + or #")
    _check_common(topic)
    return topic


def validate_filter(topic_filter: str) -> str:
    """A filter to subscribe to: ``+`` fills one whole level, ``#`` only the whole last one."""
    if not topic_filter:
        raise ValueError("topic filter must not be empty")
    _check_common(topic_filter)
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"filter {topic_filter!r}: '#' must be a whole, last level")
        if "+" in level and level != "+":
            raise ValueError(f"filter {topic_filter!r}: '+' must be a whole level")
    return topic_filter


def validate_qos(qos: int) -> int:
    if qos not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
    return qos


def _check_common(text: str) -> None:
    if "\x00" in text:
        raise ValueError(f"topic {text!r} must not contain NUL")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"topic {text!r} is not valid UTF-8 (a lone surrogate)") from None
    if size > 65535:
        raise ValueError(f"topic {text[:40]!r}... is longer than 65535 bytes")


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching; ``$``-topics are not matched by a leading wildcard (MQTT 4.7.2)."""
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels):
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


def health_topic(client_id: str) -> str:
    return f"system/health/{client_id}"


def keepalive_topic(client_id: str) -> str:
    return f"system/keepalive/{client_id}"


def reply_topic(client_id: str) -> str:
    """Where this client's request replies arrive."""
    return f"system/reply/{client_id}"
