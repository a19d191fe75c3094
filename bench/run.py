"""Raw paho-mqtt against tars_mqtt, on one local mosquitto, in one run; prints a table.

    .venv/bin/python -m bench.run [--quick] [--rounds N] [--only NAME...] [--out FILE]

Scenarios (each alternates the two libraries, publisher and subscriber in separate
processes, ~200-byte JSON messages):

- ``throughput``: N messages at QoS 0 (100k) and QoS 1 (20k) as fast as they go;
  end-to-end msg/s = received / (last arrival - first publish); also the subscriber's CPU
  seconds per 100k messages received; and the receive path alone (QoS 0, the same raw
  paho publisher feeding either subscriber).
- ``latency``: 1,000 msg/s for 5 s at QoS 0 and QoS 1; publish→handler p50/p99.
- ``reconnect``: broker restarted under a subscriber; seconds from the broker accepting
  again to the first message through the restored subscription (probed every 10 ms).
- ``rss``: 1M messages at QoS 0 into a subscriber; for tars_mqtt a saturated queue
  (1,000, ``drop_oldest``, a 1 ms handler); peak RSS (VmHWM) and growth of VmRSS.

Benchmarks never decide a test run; the targets are checked only in the printed table.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import paho.mqtt as paho_pkg
import paho.mqtt.client as paho
import ujson
from paho.mqtt.enums import CallbackAPIVersion

from tars_mqtt.testing import MOSQUITTO, Broker

from .workers import PubSpec, SubSpec, publisher, subscriber

VARIANTS = ("paho", "tars")
SCENARIOS = ("throughput", "latency", "reconnect", "rss")
BROKER_EXTRA = "max_queued_messages 0\n"  # a slow bench subscriber must not lose QoS 1


@dataclass(frozen=True)
class Sizes:
    qos0: int = 100_000
    qos1: int = 20_000
    rate: float = 1000.0
    seconds: float = 5.0
    restarts: int = 3
    rss: int = 1_000_000


QUICK = Sizes(qos0=20_000, qos1=5_000, seconds=2.0, restarts=1, rss=200_000)
Results = dict[str, dict[str, list[float]]]  # metric -> variant -> one value per round


class Bench:
    def __init__(self, broker: Broker, sizes: Sizes, rounds: int) -> None:
        self.broker = broker
        self.sizes = sizes
        self.rounds = rounds
        self.ctx: SpawnContext = mp.get_context("spawn")
        self.results: Results = {}
        self.notes: list[str] = []
        self._runs = 0

    def record(self, metric: str, variant: str, value: float) -> None:
        self.results.setdefault(metric, {v: [] for v in VARIANTS})[variant].append(value)

    def order(self, round_no: int) -> tuple[str, ...]:
        """Alternate which library goes first, so neither always gets the quieter slot."""
        return VARIANTS if round_no % 2 == 0 else VARIANTS[::-1]

    def pair(self, sub: SubSpec, pub: PubSpec | None,
             during: Callable[[BaseProcess], None] | None = None,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one subscriber (and one publisher) process; return their results."""
        ctx = self.ctx
        sub_q: Any = ctx.Queue()
        pub_q: Any = ctx.Queue()
        ready, stop, go = ctx.Event(), ctx.Event(), ctx.Event()
        procs = [ctx.Process(target=subscriber, args=(sub, ready, stop, sub_q), daemon=True)]
        procs[0].start()
        pub_result: dict[str, Any] = {}
        try:
            if not ready.wait(30):
                raise RuntimeError(f"bench: {sub.variant} subscriber never became ready")
            if pub is not None:
                procs.append(ctx.Process(target=publisher, args=(pub, go, pub_q), daemon=True))
                procs[1].start()
                go.set()
                pub_result = pub_q.get(timeout=600)
            if during is not None:
                during(procs[0])
            stop.set()
            return sub_q.get(timeout=600), pub_result
        finally:
            stop.set()
            for proc in procs:
                proc.join(15)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)

    def topic(self, name: str) -> str:
        self._runs += 1
        return f"bench/{name}/{self._runs}"

    def specs(self, variant: str, name: str, qos: int, count: int, *, pub_variant: str = "",
              rate: float = 0.0, **sub_fields: Any) -> tuple[SubSpec, PubSpec]:
        topic, b = self.topic(name), self.broker
        sub = SubSpec(variant, "127.0.0.1", b.port, topic, qos, count, **sub_fields)
        pub = PubSpec(pub_variant or variant, "127.0.0.1", b.port, topic, qos, count, rate)
        return sub, pub

    # Scenarios -------------------------------------------------------------------------
    def throughput(self) -> None:
        for qos, count in ((0, self.sizes.qos0), (1, self.sizes.qos1)):
            for round_no in range(self.rounds):
                for variant in self.order(round_no):
                    sub, pub = self.specs(variant, "tp", qos, count)
                    res, sent = self.pair(sub, pub)
                    got = res["count"]
                    if not got:
                        self.notes.append(f"throughput qos{qos} {variant}: nothing received")
                        continue
                    self.record(f"qos{qos}_e2e", variant, got / (res["last"] - sent["start"]))
                    self.record(f"qos{qos}_sub", variant, got / max(1e-9, res["last"]
                                                                    - res["first"]))
                    self.record(f"qos{qos}_pub", variant, sent["sent"] / (sent["end"]
                                                                         - sent["start"]))
                    self.record(f"qos{qos}_lost", variant, count - got)
                    if qos == 0:
                        self.record("cpu_100k", variant, res["cpu"] / got * 100_000)
                    _progress(f"throughput qos{qos} {variant}: {got}/{count} received")
        for round_no in range(self.rounds):  # the receive path alone: one publisher for both
            for variant in self.order(round_no):
                sub, pub = self.specs(variant, "rx", 0, self.sizes.qos0, pub_variant="paho")
                res, sent = self.pair(sub, pub)
                if res["count"]:
                    self.record("qos0_rx", variant, res["count"] / max(1e-9, res["last"]
                                                                       - res["first"]))
                    self.record("cpu_100k_rx", variant, res["cpu"] / res["count"] * 100_000)
                _progress(f"receive path {variant}: {res['count']}/{self.sizes.qos0} received")

    def latency(self) -> None:
        n = int(self.sizes.rate * self.sizes.seconds)
        for qos in (0, 1):
            for round_no in range(self.rounds):
                for variant in self.order(round_no):
                    sub, pub = self.specs(variant, "lat", qos, n, rate=self.sizes.rate,
                                          latency=True)
                    res, _ = self.pair(sub, pub)
                    lat = sorted(res["latencies"])
                    for name, q in (("p50", 0.50), ("p99", 0.99)):
                        self.record(f"lat{qos}_{name}", variant, 1000 * _quantile(lat, q))
                    _progress(f"latency qos{qos} {variant}: {len(lat)}/{n} messages")

    def reconnect(self) -> None:
        for round_no in range(self.sizes.restarts):
            for variant in self.order(round_no):
                sub = SubSpec(variant, "127.0.0.1", self.broker.port, self.topic("rc"), 0, 0,
                              probe=True)
                marks: dict[str, float] = {}
                res, _ = self.pair(sub, None, during=functools.partial(
                    self._restart, sub.topic, marks))
                if not res["probe_at"]:
                    self.notes.append(f"reconnect {variant}: no probe arrived within 10 s")
                    continue
                self.record("rc_up", variant, res["probe_at"] - marks["up"])
                self.record("rc_down", variant, res["probe_at"] - marks["down"])
                _progress(f"reconnect {variant}: {res['probe_at'] - marks['up']:.3f} s")

    def _restart(self, topic: str, marks: dict[str, float], sub: BaseProcess) -> None:
        """Restart the broker, then probe ``topic`` every 10 ms until ``sub`` has one."""
        marks["down"] = time.monotonic()
        self.broker.restart()
        marks["up"] = time.monotonic()
        probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
        probe.connect("127.0.0.1", self.broker.port)
        probe.loop_start()
        payload = ujson.dumps({"id": "probe", "type": "bench.probe", "ts": 0.0,
                               "source": "bench", "data": {"probe": True}})
        try:
            for _ in range(1000):  # 10 s at most; the subscriber exits once it has a probe
                probe.publish(topic, payload, qos=0)
                sub.join(0.01)
                if not sub.is_alive():
                    break
        finally:
            probe.disconnect()
            probe.loop_stop()

    def rss(self) -> None:
        n = self.sizes.rss
        for variant in VARIANTS:
            fields: dict[str, Any] = {"rss_every": n // 10}
            if variant == "tars":
                fields.update(slow=0.001, queue_size=1000, policy="drop_oldest")
            sub, pub = self.specs(variant, "rss", 0, n, pub_variant="paho", **fields)
            res, _ = self.pair(sub, pub)
            samples = res["rss"]
            self.record("rss_peak", variant, res["vmhwm_kb"] / 1024)
            self.record("rss_growth", variant, (res["vmrss_kb"] - samples[0][1]) / 1024
                        if samples else float("nan"))
            self.record("rss_idle_growth", variant, (res["vmrss_kb"] - res["rss_idle"]) / 1024)
            self.notes.append(f"rss {variant}: {res['count']:,} of {n:,} received"
                              + (f", {res.get('dropped', 0):,} dropped by the drop_oldest queue,"
                                 f" {res.get('dispatched', 0):,} handled" if variant == "tars"
                                 else "")
                              + "; VmRSS MB by messages: "
                              + ", ".join(f"{c // 1000}k: {kb / 1024:.1f}" for c, kb in samples))
            _progress(f"rss {variant}: done")


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# The table -------------------------------------------------------------------------------
ROWS: list[tuple[str, str, str, str]] = [  # metric, label, format, target
    ("qos0_e2e", "QoS 0 throughput, end-to-end (msg/s)", "{:,.0f}", "tars ≥ 0.8× paho"),
    ("qos0_sub", "QoS 0 subscriber receive rate (msg/s)", "{:,.0f}", ""),
    ("qos0_pub", "QoS 0 publisher rate (msg/s)", "{:,.0f}", ""),
    ("qos0_lost", "QoS 0 messages lost", "{:,.0f}", ""),
    ("qos0_rx", "QoS 0 receive path alone: raw paho publisher for both (msg/s)", "{:,.0f}",
     ""),
    ("cpu_100k_rx", "  its subscriber CPU s per 100k received", "{:.2f}", ""),
    ("qos1_e2e", "QoS 1 throughput, end-to-end (msg/s)", "{:,.0f}", ""),
    ("qos1_sub", "QoS 1 subscriber receive rate (msg/s)", "{:,.0f}", ""),
    ("qos1_pub", "QoS 1 publisher rate, acked (msg/s)", "{:,.0f}", ""),
    ("lat0_p50", "latency p50 at 1,000 msg/s, QoS 0 (ms)", "{:.2f}", ""),
    ("lat0_p99", "latency p99 at 1,000 msg/s, QoS 0 (ms)", "{:.2f}", "tars ≤ 2× paho"),
    ("lat1_p50", "latency p50 at 1,000 msg/s, QoS 1 (ms)", "{:.2f}", ""),
    ("lat1_p99", "latency p99 at 1,000 msg/s, QoS 1 (ms)", "{:.2f}", "tars ≤ 2× paho"),
    ("rc_up", "reconnect: broker up → subscription restored (s, worst)", "{:.3f}",
     "tars ≤ 1.0 s (min delay 0.5 + 0.5)"),
    ("rc_down", "reconnect: broker down → restored (s, worst)", "{:.3f}", ""),
    ("rss_peak", "peak RSS, VmHWM (MB)", "{:.1f}", ""),
    ("rss_growth", "RSS growth after the first 10% of the messages (MB)", "{:.1f}",
     "tars < 20 MB"),
    ("rss_idle_growth", "RSS growth from idle (MB)", "{:.1f}", ""),
    ("cpu_100k", "subscriber CPU s per 100k received (QoS 0)", "{:.2f}", ""),
]
WORST = {"rc_up", "rc_down", "qos0_lost"}


def _summary(metric: str, values: list[float]) -> float:
    if not values:
        return float("nan")
    return max(values) if metric in WORST else statistics.median(values)


def _met(metric: str, paho_v: float, tars_v: float) -> str:
    checks: dict[str, Callable[[], bool]] = {
        "qos0_e2e": lambda: tars_v >= 0.8 * paho_v,
        "lat0_p99": lambda: tars_v <= 2 * paho_v,
        "lat1_p99": lambda: tars_v <= 2 * paho_v,
        "rc_up": lambda: tars_v <= 1.0,
        "rss_growth": lambda: tars_v < 20,
    }
    return ("**yes**" if checks[metric]() else "**NO**") if metric in checks else ""


def table(results: Results) -> str:
    lines = ["| metric | raw paho | tars_mqtt | tars/paho | target | met |",
             "|---|---:|---:|---:|---|---|"]
    for metric, label, fmt, target in ROWS:
        if metric not in results:
            continue
        p = _summary(metric, results[metric]["paho"])
        t = _summary(metric, results[metric]["tars"])
        ratio = f"{t / p:.2f}" if p and p == p and t == t else ""
        lines.append(f"| {label} | {fmt.format(p)} | {fmt.format(t)} | {ratio} | {target} |"
                     f" {_met(metric, p, t)} |")
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.node()}: {model}, {os.cpu_count()} CPUs, Linux {platform.release()},"
            f" Python {platform.python_version()}, paho-mqtt {paho_pkg.__version__},"
            f" mosquitto {_mosquitto_version()}")


def _mosquitto_version() -> str:
    try:
        out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].split()[-1] if first else "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 1 min)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of throughput and latency (default 3, quick 1)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tars-bench-") as tmp:
        broker = Broker(Path(tmp), extra=BROKER_EXTRA).start()
        try:
            bench = Bench(broker, sizes, rounds)
            for name in args.only:
                _progress(f"{name} ...")
                getattr(bench, name)()
        finally:
            broker.stop()
    report = "\n".join([
        f"tars-mqtt bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {machine()}",
        f"sizes: {sizes}, rounds: {rounds} (median; worst for reconnect and losses),"
        f" wall time {time.monotonic() - started:.0f} s",
        "",
        table(bench.results),
        "",
        *[f"- {note}" for note in bench.notes],
        "",
        "all values per round: " + ujson.dumps(
            {m: {v: [round(x, 4) for x in xs] for v, xs in d.items()}
             for m, d in bench.results.items()}),
    ])
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
