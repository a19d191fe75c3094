"""A custom stats exporter: every client's ``ClientStats`` as Prometheus metrics over HTTP.

    MQTT_URL=mqtt://localhost:1883 python examples/stats_exporter.py

``StatsExporter`` serves ``GET /metrics`` in Prometheus' text format on 127.0.0.1. It
reads its own client's ``stats()`` at each scrape, and it listens to the heartbeats on
``system/keepalive/+``: every tars client sends its stats there each
``MQTT_HEARTBEAT_INTERVAL``, so one exporter shows the whole robot. Nothing in the core
changes; the exporter is a subscriber and a small HTTP server.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tars_mqtt import ClientStats, Message, MQTTClient, MQTTConfig

__all__ = ["StatsExporter", "render"]

# ClientStats field -> (metric name, type); counters get the conventional _total suffix.
GAUGES = {"queue_depth", "offline_queued", "handler_latency_p50", "handler_latency_p99"}
HELP = {
    "published": "Messages handed to the broker.",
    "received": "Messages that matched a subscription.",
    "dispatched": "Handler runs that returned without raising.",
    "dropped": "Deliveries dropped by the queue policy.",
    "duplicates": "Envelopes dropped as duplicates.",
    "decode_errors": "Payloads that were not envelopes.",
    "handler_errors": "Handler runs that raised.",
    "reconnects": "Connects after the first.",
    "late_replies": "Replies that came after their request timed out.",
    "queue_depth": "Deliveries waiting for a worker.",
    "offline_queued": "Publishes waiting for the link.",
    "handler_latency_p50": "Median seconds from arrival to handler return.",
    "handler_latency_p99": "99th percentile seconds from arrival to handler return.",
    "broker": "The broker the client is connected to (label broker; none while offline).",
}
INFO = {"broker"}  # text fields: an info metric, the text in a label


def _metric(field: str) -> tuple[str, str]:
    if field in INFO:
        return f"tars_mqtt_{field}_info", "gauge"
    if field in GAUGES:
        suffix = "_seconds" if field.startswith("handler_latency") else ""
        return f"tars_mqtt_{field}{suffix}", "gauge"
    return f"tars_mqtt_{field}_total", "counter"


def render(per_client: dict[str, dict[str, Any]], ages: dict[str, float]) -> str:
    """Prometheus text for ``{client id: stats dict}`` and the age of each one's stats."""
    lines = []
    for field in ClientStats.__dataclass_fields__:
        name, kind = _metric(field)
        lines += [f"# HELP {name} {HELP.get(field, field)}", f"# TYPE {name} {kind}"]
        for client, stats in sorted(per_client.items()):
            value = stats.get(field)
            if field in INFO and isinstance(value, str) and value:
                lines.append(f'{name}{{client="{_label(client)}",{field}="{_label(value)}"}} 1')
            elif isinstance(value, int | float) and not isinstance(value, bool):
                lines.append(f'{name}{{client="{_label(client)}"}} {value}')
    lines += ["# HELP tars_mqtt_stats_age_seconds Seconds since these stats were taken.",
              "# TYPE tars_mqtt_stats_age_seconds gauge"]
    for client, age in sorted(ages.items()):
        lines.append(f'tars_mqtt_stats_age_seconds{{client="{_label(client)}"}} {age:.3f}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class StatsExporter:
    """Serve ``/metrics`` for ``client`` and every client whose heartbeat it hears."""

    def __init__(self, client: MQTTClient, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.client = client
        self._lock = threading.Condition()
        self._fleet: dict[str, tuple[float, dict[str, Any]]] = {}  # id -> (when, stats)
        client.subscribe("system/keepalive/+", self._on_heartbeat, qos=0)
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="stats-exporter-http")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/metrics"

    def _on_heartbeat(self, msg: Message) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        stats = data.get("stats")
        client_id = msg.topic.rsplit("/", 1)[-1]
        if isinstance(stats, dict) and client_id != self.client.config.client_id:
            with self._lock:
                self._fleet[client_id] = (time.monotonic(), stats)
                self._lock.notify_all()

    def wait_for(self, client_id: str, timeout: float, field: str = "published",
                 at_least: float = 0) -> bool:
        """Block until ``client_id``'s heartbeat shows ``field >= at_least`` (demos, tests)."""
        def heard() -> bool:
            entry = self._fleet.get(client_id)
            return entry is not None and entry[1].get(field, 0) >= at_least

        with self._lock:
            return self._lock.wait_for(heard, timeout)

    def render(self) -> str:
        now = time.monotonic()
        own = self.client.config.client_id
        with self._lock:
            per_client = {cid: stats for cid, (_, stats) in self._fleet.items()}
            ages = {cid: now - at for cid, (at, _) in self._fleet.items()}
        per_client[own] = self.client.stats().to_dict()
        ages[own] = 0.0
        return render(per_client, ages)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def main() -> None:
    with MQTTClient.from_env(client_id="example-exporter") as client:
        exporter = StatsExporter(client)
        worker_config = MQTTConfig.from_env(client_id="example-worker")
        with MQTTClient(worker_config.replace(heartbeat_interval=0.2)) as worker:
            for n in range(3):
                worker.publish_event("work/done", "work.done", {"n": n}).wait(5)
            if not exporter.wait_for("example-worker", 10, "published", at_least=3):
                raise SystemExit("no heartbeat with the 3 publishes from example-worker")
            with urllib.request.urlopen(exporter.url, timeout=5) as response:
                text = response.read().decode()
        exporter.close()
    published = {}
    for line in text.splitlines():
        if line.startswith("tars_mqtt_published_total{"):
            labels, value = line.rsplit(" ", 1)
            published[labels.split('"')[1]] = float(value)
    print("# TYPE tars_mqtt_published_total counter" in text, sorted(published))
    print("the worker published at least 3:", published["example-worker"] >= 3)


if __name__ == "__main__":
    main()
