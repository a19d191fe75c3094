"""The main job (for now): a tiny service on tars_mqtt against its own mosquitto.

Starts mosquitto on a free loopback port (or uses ``MQTT_URL``), runs a service that
answers pings, publishes a few pings and prints what flows. The services issue grows
this into the full robot scene.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker


def main() -> int:
    broker = None
    url = os.environ.get("MQTT_URL")
    if not url:
        broker = Broker(Path(tempfile.mkdtemp(prefix="tars-demo-"))).start()
        url = broker.url
        print(f"demo: mosquitto on {url}")
    t0 = time.monotonic()
    done = threading.Event()
    pongs: list[Message] = []
    try:
        with MQTTClient(MQTTConfig(url=url, client_id="demo-service")) as service, \
                MQTTClient(MQTTConfig(url=url, client_id="demo-caller")) as caller:

            @service.subscribe("demo/ping", qos=1)
            def on_ping(msg: Message) -> None:
                service.publish_event("demo/pong", "demo.pong", {"n": msg.data["n"]},
                                      correlate=msg.envelope.id if msg.envelope else None)

            def on_any(msg: Message) -> None:
                print(f"{time.monotonic() - t0:6.3f}s  {msg.topic:<28} {msg.type or '-':<16}"
                      f" {msg.data}")
                if msg.topic == "demo/pong":
                    pongs.append(msg)
                    if len(pongs) == 3:
                        done.set()

            caller.subscribe("#", on_any, qos=1)
            for n in range(3):
                caller.publish_event("demo/ping", "demo.ping", {"n": n}).wait(5)
            if not done.wait(10):
                print("demo: FAILED: not every ping was answered within 10 s", file=sys.stderr)
                return 1
        print("demo: ok, 3 pings answered")
        return 0
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
