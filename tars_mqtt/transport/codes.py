"""paho's reason codes translated, in one place, into the client's errors and words."""

from __future__ import annotations

from typing import Any

from ..errors import ConnectError
from .paho_api import ReasonCode

__all__ = ["GIVE_UP", "connect_error", "describe_reason", "no_mqtt5"]

# Reason codes that mean "your configuration is wrong": retrying only hammers the broker.
_FATAL = {0x84: "refused", 0x85: "refused", 0x86: "bad_credentials", 0x87: "not_authorized",
          0x8A: "refused", 0x8C: "bad_credentials"}
GIVE_UP = ("bad_credentials", "not_authorized", "protocol")  # retrying cannot fix these


def describe_reason(code: Any) -> str:
    name = code.getName() if hasattr(code, "getName") else str(code)
    return f"{name} (0x{int(getattr(code, 'value', 0)):02x})"


def connect_error(code: ReasonCode, host: str, port: int, client_id: str = "") -> ConnectError:
    reason = _FATAL.get(code.value, "refused")
    hint = ""
    if reason == "not_authorized" and client_id:  # a robot broker ties client ids to logins
        hint = (f": this login may not connect, or not with client id {client_id!r} (it may"
                " belong to another login); the broker's log says which")
    return ConnectError(
        f"broker {host}:{port} refused the connection: {describe_reason(code)}{hint}",
        reason=reason, reason_code=code.value,
    )


def no_mqtt5(host: str, port: int, how: str) -> ConnectError:
    return ConnectError(f"broker {host}:{port} does not speak MQTT 5 ({how}; it answers"
                        " MQTT 3.1.1): set MQTT_PROTOCOL=3.1.1", reason="protocol",
                        reason_code=0x84)
