"""Everything the client takes from paho-mqtt, in one place.

Only this module imports paho, so moving to another paho release is reviewed here. The
names with a leading underscore are paho internals that the client's own network loop
relies on (the packet decoder's errors, the connection state); tests/tars_mqtt/test_wire.py
pins what the loop expects of them.
"""

from __future__ import annotations

import paho.mqtt.client as paho
from paho.mqtt._packet import DECODE_ERRORS
from paho.mqtt.enums import (
    CallbackAPIVersion,
    MQTTErrorCode,
    MQTTProtocolVersion,
    _ConnectionState,
)
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

__all__ = [
    "DECODE_ERRORS",
    "CallbackAPIVersion",
    "MQTTErrorCode",
    "MQTTProtocolVersion",
    "MalformedPacket",
    "PacketTypes",
    "Properties",
    "ReasonCode",
    "SubscribeOptions",
    "_ConnectionState",
    "paho",
]
