"""tars_mqtt: the one MQTT client of the TARS robot's services.

A paho network thread feeds a bounded queue that a worker pool drains into handlers;
JSON envelopes, QoS 0/1/2, reconnect with backoff and resubscribe, last will, retained
health, heartbeats, deduplication, request/reply and clean shutdown; QoS 1/2 messages
are acknowledged only once handled. docs/api.md describes every name exported here.
"""

from .client import MQTTClient
from .config import MQTTConfig
from .envelope import Envelope, Message
from .errors import (
    ConfigError,
    ConnectError,
    MQTTError,
    PublishError,
    RequestTimeout,
    SubscribeError,
)
from .mailboxes import Subscription
from .publishing import PublishHandle
from .requests import ReplyHandle
from .state import ClientState
from .stats import ClientStats

__all__ = [
    "ClientState",
    "ClientStats",
    "ConfigError",
    "ConnectError",
    "Envelope",
    "MQTTClient",
    "MQTTConfig",
    "MQTTError",
    "Message",
    "PublishError",
    "PublishHandle",
    "ReplyHandle",
    "RequestTimeout",
    "SubscribeError",
    "Subscription",
]

__version__ = "0.1.0"
