"""Brokers seen from outside a connection: TLS per broker of a list, pointing paho at the
broker of the next attempt, and the check that tells "speaks no MQTT 5" from a refusal."""

from __future__ import annotations

import ssl
import threading
import time

from ..config import MQTTConfig
from .paho_api import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion, paho

__all__ = ["lacks_mqtt5", "point_at", "tls_context"]

_PROBE_TIMEOUT = 3.0  # seconds for each CONNECT of the protocol check


def tls_context(cfg: MQTTConfig) -> ssl.SSLContext:
    """What paho's ``tls_set`` makes, for one broker of a list (paho takes only one)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.tls_ca)
    if cfg.tls_cert is not None:
        context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    context.check_hostname = not cfg.tls_insecure
    return context


def point_at(client: paho.Client, cfg: MQTTConfig, context: ssl.SSLContext | None) -> None:
    """Aim paho at broker ``cfg`` for the attempt it is starting (its socket is closed).

    paho's setters refuse while it is "connecting", which it already is here, and it takes
    TLS once per client (``tls_set`` refuses a second call): its fields, then.
    """
    client._host, client._port, client._transport = cfg.host, cfg.port, cfg.transport
    client._ssl, client._ssl_context = cfg.tls, context
    client._tls_insecure = cfg.tls_insecure
    if cfg.transport == "websockets":
        client.ws_set_options(path=cfg.ws_path)
    client.username_pw_set(cfg.username, cfg.password)


def lacks_mqtt5(cfg: MQTTConfig) -> bool:
    """After a broker closed an MQTT 5 CONNECT unanswered: it still does so to an anonymous
    one, and answers MQTT 3.1.1 (RabbitMQ 3.x does). Anonymous: such a broker logs the
    bytes it could not parse, so no password."""
    return (_probe(cfg, paho.MQTTv5) == "closed"
            and _probe(cfg, paho.MQTTv311) == "answered")


def _probe(cfg: MQTTConfig, protocol: MQTTProtocolVersion) -> str:
    """How broker ``cfg`` meets an anonymous CONNECT (no id, no login) in ``protocol``:
    ``answered`` (a refusal is an answer too), ``closed`` unanswered, or ``silent``."""
    probe = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="",
                        protocol=protocol, transport=cfg.transport)
    answered = threading.Event()
    probe.on_connect = lambda *args: answered.set()
    probe.connect_timeout = _PROBE_TIMEOUT
    if cfg.transport == "websockets":
        probe.ws_set_options(path=cfg.ws_path)
    if cfg.tls:
        probe.tls_set_context(tls_context(cfg))
    deadline = time.monotonic() + _PROBE_TIMEOUT
    try:
        probe.connect(cfg.host, cfg.port, keepalive=10)
        while not answered.is_set():
            if probe.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return "answered" if answered.is_set() else "closed"
            if time.monotonic() > deadline:
                return "silent"
    except (OSError, ValueError):
        return "closed"
    finally:
        probe.disconnect()
    return "answered"
