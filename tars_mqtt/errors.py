"""The one error tree of tars_mqtt.

::

    MQTTError
    ├── ConfigError      (also ValueError)    a bad setting; names the variable and the rule
    ├── ConnectError     (also ConnectionError) the broker refused us or could not be reached
    ├── PublishError                          a publish that cannot be sent or was not acked
    ├── SubscribeError                        the broker refused a subscription
    └── RequestTimeout   (also TimeoutError)  no reply to a request in time

Every message names the offending value, never a secret.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConnectError",
    "MQTTError",
    "PublishError",
    "RequestTimeout",
    "SubscribeError",
]


class MQTTError(Exception):
    """Root of every error raised by tars_mqtt."""


class ConfigError(MQTTError, ValueError):
    """A configuration value broke a rule; raised at start-up, before any connection.

    ``field`` is the :class:`MQTTConfig` field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConnectError(MQTTError, ConnectionError):
    """The broker could not be reached or refused the connection.

    ``reason`` is one of ``refused``, ``bad_credentials``, ``not_authorized``,
    ``unreachable``, ``timeout``, ``tls`` or ``protocol`` (the broker lacks the MQTT
    version asked for); ``reason_code`` is the broker's code when it sent one.
    """

    def __init__(self, message: str, *, reason: str, reason_code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.reason_code = reason_code


class PublishError(MQTTError):
    """A publish was refused locally (offline queue full, stopped) or by the broker."""


class SubscribeError(MQTTError):
    """The broker refused a subscription (reason code 0x80 or above)."""


class RequestTimeout(MQTTError, TimeoutError):
    """No reply matched a request within its timeout."""
