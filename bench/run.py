"""tars_mqtt against raw paho-mqtt and its peers, on one local mosquitto, in one run.

    .venv/bin/python -m bench.run [--quick] [--rounds N] [--only NAME...] [--out FILE]

Contenders: raw paho-mqtt MQTT 5 (the baseline, = 1.0), tars sync, tars.aio, aiomqtt,
raw paho-mqtt 3.1.1 and mosquitto's C clients. Scenarios (each round runs every
contender, in an order rotated from round to round; publisher and subscriber are
separate processes; messages are ~200-byte JSON envelopes):

- ``throughput``: QoS 0 end-to-end, the receive path alone (one fast publisher feeding
  every subscriber), the publish path alone (no subscriber; up to the PUBACK of a QoS 1
  message sent after the rest), QoS 1 end-to-end;
- ``latency``: 1,000 msg/s at QoS 0 and QoS 1; publish→handler p50/p99/p99.9;
- ``reconnect``: mosquitto restarted under a subscriber (raw paho 5, tars sync, tars.aio);
  seconds until a probe gets through the restored subscription;
- ``rss``: 1M messages into a subscriber that keeps up (the publisher stays at most
  ``window`` messages ahead of what it handled): RSS growth, peak, messages not handled;
- ``estop``: ``movement/stop`` → servo pins still, and → ``stopped`` status (tars sync).

Benchmarks never decide a test run; the targets are checked only in the printed tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ujson

from tars_mqtt.testing import Broker

from . import cclients, estop
from .children import PyChild, prober
from .table import BASELINE, COLUMNS, LABELS, Results, report
from .workers import PubSpec, SubSpec, publisher, subscriber

CONTENDERS = (BASELINE, *COLUMNS)
SCENARIOS = ("throughput", "latency", "reconnect", "rss", "estop")
RECONNECTING = ("paho5", "tars", "aio")  # reconnect and resubscribe without user loops
PROBE = ujson.dumps({"id": "probe", "type": "bench.probe", "ts": 0.0, "source": "bench",
                     "data": {"probe": True}})
BROKER_EXTRA = "max_queued_messages 0\n"  # a slow bench subscriber must not lose QoS 1
NODELAY = "set_tcp_nodelay true"  # else Nagle adds ~40 ms outliers (bench/README.md)
DEFAULT_OUT = Path(".tmp/bench-last.md")


@dataclass(frozen=True)
class Sizes:
    qos0: int = 100_000
    qos1: int = 20_000
    rate: float = 1000.0
    seconds: float = 10.0   # at `rate`: 10,000 samples, so p99.9 is the 10th worst
    rss: int = 1_000_000
    window: int = 500
    stops: int = 200
    restarts: int = 3
    idle: float = 3.0


QUICK = Sizes(qos0=2_000, qos1=500, seconds=0.2, rss=3_000, window=200, stops=3, restarts=1,
              idle=0.3)


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, broker: Broker, sizes: Sizes, rounds: int,
                 contenders: Sequence[str], rss_rounds: int = 1) -> None:
        self.broker, self.sizes, self.rounds = broker, sizes, rounds
        self.rss_rounds = rss_rounds
        self.contenders = tuple(contenders)
        self.ctx = mp.get_context("forkserver")  # fast, clean children: no parent threads
        self.ctx.set_forkserver_preload(["bench.workers", "bench.clients", "bench.aclients",
                                         "bench.estop"])
        self.results: Results = {}
        self.notes: list[str] = []
        self.failures: list[str] = []
        self._runs = itertools.count(1)
        self.feeder = "mosquitto" if "mosquitto" in self.contenders else BASELINE

    def record(self, metric: str, lib: str, value: float) -> None:
        self.results.setdefault(metric, {}).setdefault(lib, []).append(value)

    def order(self, round_no: int) -> tuple[str, ...]:
        """Rotate who goes first, so no contender always gets the same slot."""
        shift = round_no % len(self.contenders)
        return self.contenders[shift:] + self.contenders[:shift]

    def attempt(self, what: str, run: Callable[[], dict[str, float]]) -> dict[str, float]:
        """One measurement; a failure is reported and leaves NaN, the run goes on."""
        try:
            return run()
        except Exception as exc:
            self.failures.append(f"{what}: {type(exc).__name__}: {exc}")
            _progress(f"{what}: FAILED {exc}")
            return {}

    def specs(self, sub_lib: str | None, pub_lib: str, name: str, qos: int, count: int, *,
              rate: float = 0.0, fence: bool = False, window: int = 0, **sub_fields: Any,
              ) -> tuple[SubSpec | None, PubSpec]:
        topic, port = f"bench/{name}/{next(self._runs)}", self.broker.port
        sub = None if sub_lib is None else SubSpec(sub_lib, "127.0.0.1", port, topic, qos, count,
                                                   idle=self.sizes.idle, **sub_fields)
        return sub, PubSpec(pub_lib, "127.0.0.1", port, topic, qos, count, rate, fence, window)

    def pair(self, sub: SubSpec | None, pub: PubSpec, timeout: float = 1800.0,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one subscriber (if any) and one publisher; return their results."""
        ctx = self.ctx
        stop, go, handled = ctx.Event(), ctx.Event(), ctx.RawValue("q", 0)
        sides: list[Any] = []
        try:
            receiver: Any = None
            if sub is not None:
                receiver = (cclients.CSubscriber(sub, handled) if sub.lib == "mosquitto"
                            else PyChild(ctx, subscriber, sub, stop, go, handled))
                sides.append(receiver)
            sender: Any = (cclients.CPublisher(pub) if pub.lib == "mosquitto"  # connects
                           else PyChild(ctx, publisher, pub, stop, go, handled))  # meanwhile
            sides.append(sender)
            if receiver is not None:
                receiver.wait_ready(30)
            sender.start()
            sender.go()
            sent = sender.result(timeout)
            if receiver is None:
                return {}, sent
            receiver.finish()
            return receiver.result(timeout), sent
        finally:
            for side in sides:
                side.close()

    # Scenarios -------------------------------------------------------------------------
    def throughput(self) -> None:
        s = self.sizes
        rows: list[tuple[str, Callable[[str], dict[str, float]]]] = [
            ("qos0_e2e", lambda lib: self._end_to_end(lib, 0, s.qos0)),
            ("qos0_rx", self._receive_path),
            ("qos0_pub", self._publish_path),
            ("qos1_e2e", lambda lib: self._end_to_end(lib, 1, s.qos1)),
        ]
        for metric, run in rows:
            for round_no in range(self.rounds):
                for lib in self.order(round_no):
                    got = self.attempt(f"{metric} {lib}", lambda: run(lib))  # noqa: B023
                    for name in (metric, "cpu_rx") if metric == "qos0_rx" else (metric,):
                        self.record(name, lib, got.get(name, math.nan))
                    _progress(f"{metric} {lib}: {got.get(metric, math.nan):,.0f} msg/s")

    def _lost(self, what: str, expected: int, got: int) -> None:
        if got < expected:
            self.notes.append(f"{what}: {expected - got:,} of {expected:,} messages lost")

    def _end_to_end(self, lib: str, qos: int, count: int) -> dict[str, float]:
        res, sent = self.pair(*self.specs(lib, lib, f"e2e{qos}", qos, count))
        self._lost(f"QoS {qos} end-to-end, {LABELS[lib]}", count, res["count"])
        return {f"qos{qos}_e2e": res["count"] / (res["last"] - sent["start"])}

    def _receive_path(self, lib: str) -> dict[str, float]:
        count = self.sizes.qos0
        res, _ = self.pair(*self.specs(lib, self.feeder, "rx", 0, count))
        self._lost(f"receive path, {LABELS[lib]}", count, res["count"])
        return {"qos0_rx": res["count"] / max(1e-9, res["last"] - res["first"]),
                "cpu_rx": res["cpu"] / res["count"] * 1e6}

    def _publish_path(self, lib: str) -> dict[str, float]:
        _, sent = self.pair(*self.specs(None, lib, "tx", 0, self.sizes.qos0, fence=True))
        return {"qos0_pub": sent["sent"] / (sent["end"] - sent["start"])}

    def latency(self) -> None:
        n = int(self.sizes.rate * self.sizes.seconds)
        for qos in (0, 1):
            for round_no in range(self.rounds):
                for lib in self.order(round_no):
                    def run(lib: str = lib, qos: int = qos) -> dict[str, float]:
                        res, _ = self.pair(*self.specs(lib, lib, f"lat{qos}", qos, n,
                                                       rate=self.sizes.rate, latency=True))
                        self._lost(f"latency QoS {qos}, {LABELS[lib]}", n, res["count"])
                        lat = sorted(res["latencies"])
                        return {name: 1000 * _quantile(lat, q)
                                for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}
                    got = self.attempt(f"latency qos{qos} {lib}", run)
                    for name in ("p50", "p99", "p999"):
                        self.record(f"lat{qos}_{name}", lib, got.get(name, math.nan))
                    _progress(f"latency qos{qos} {lib}: p99 {got.get('p99', math.nan):.2f} ms")

    def reconnect(self) -> None:
        libs = [lib for lib in self.contenders if lib in RECONNECTING]
        for round_no in range(self.sizes.restarts):
            for lib in libs[round_no % len(libs):] + libs[:round_no % len(libs)]:
                got = self.attempt(f"reconnect {lib}", lambda: self._reconnect(lib))  # noqa: B023
                for name in ("rc_up", "rc_down"):
                    self.record(name, lib, got.get(name, math.nan))
                _progress(f"reconnect {lib}: {got.get('rc_up', math.nan):.3f} s")

    def _reconnect(self, lib: str) -> dict[str, float]:
        """Restart the broker under a subscriber; probe every 10 ms until one gets through."""
        sub, _ = self.specs(lib, lib, "rc", 0, 0, probe=True, limit=20.0)
        assert sub is not None
        ctx = self.ctx
        child = PyChild(ctx, subscriber, sub, ctx.Event(), ctx.Event(), ctx.RawValue("q", 0))
        try:
            child.wait_ready(30)
            down = time.monotonic()
            self.broker.restart()
            up = time.monotonic()
            with prober("127.0.0.1", self.broker.port) as send:
                for _ in range(1000):  # 10 s at most; the subscriber ends at its first probe
                    send(sub.topic, PROBE)
                    if child.ended(0.01):
                        break
            res = child.result(10)
        finally:
            child.close()
        if not res["probe_at"]:
            raise TimeoutError("no probe came through within 10 s")
        return {"rc_up": res["probe_at"] - up, "rc_down": res["probe_at"] - down}

    def rss(self) -> None:
        n = self.sizes.rss
        for round_no in range(self.rss_rounds):
            for lib in self.order(round_no):
                def run(lib: str = lib, round_no: int = round_no) -> dict[str, float]:
                    res, _ = self.pair(*self.specs(lib, BASELINE, "rss", 0, n,
                                                   window=self.sizes.window,
                                                   rss_every=max(1, n // 10)))
                    samples = res["rss"]
                    if round_no == 0:
                        self.notes.append(f"RSS {LABELS[lib]}: {res['count']:,} of {n:,}"
                                          " handled; VmRSS MB by messages: " + ", ".join(
                                              f"{c:,}: {kb / 1024:.1f}"
                                              for c, kb in samples))
                    return {"rss_growth": (res["vmrss_kb"] - samples[0][1]) / 1024
                            if samples else math.nan,
                            "rss_idle_growth": (res["vmrss_kb"] - res["rss_idle"]) / 1024,
                            "rss_peak": res["vmhwm_kb"] / 1024,
                            "rss_drops": n - res["count"]}  # dropped or lost: not handled
                got = self.attempt(f"rss {lib}", run)
                for name in ("rss_growth", "rss_idle_growth", "rss_peak", "rss_drops"):
                    self.record(name, lib, got.get(name, math.nan))
                _progress(f"rss {lib}: growth {got.get('rss_growth', math.nan):.1f} MB")

    def estop(self) -> None:
        for round_no in range(self.rounds):
            def run(seed: int = round_no) -> dict[str, float]:
                got = estop.measure(self.ctx, self.broker.url, self.sizes.stops, seed)
                return {f"estop_{kind}_{name}": 1000 * _quantile(sorted(values), q)
                        for kind, values in got.items() for name, q in (("p50", .5),
                                                                        ("p99", .99))}
            got = self.attempt("estop", run)
            for kind, name in itertools.product(("pins", "status"), ("p50", "p99")):
                self.record(f"estop_{kind}_{name}", "tars", got.get(f"estop_{kind}_{name}",
                                                                    math.nan))
            _progress(f"estop: status p99 {got.get('estop_status_p99', math.nan):.2f} ms")


def available_contenders() -> tuple[list[str], list[str]]:
    """The contenders that can run here, and a note for each one that cannot."""
    libs, notes = [], []
    for lib in CONTENDERS:
        if lib == "aiomqtt" and importlib.util.find_spec("aiomqtt") is None:
            notes.append("aiomqtt is not installed (pip install -e '.[bench]'): column empty")
        elif lib == "mosquitto" and not cclients.available():
            notes.append("mosquitto_pub/mosquitto_sub are not installed (apt-get install"
                         " mosquitto-clients): column empty")
        else:
            libs.append(lib)
    return libs, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, one round (seconds)")
    parser.add_argument("--rounds", type=int, default=None, help="default 3, quick 1")
    parser.add_argument("--rss-rounds", type=int, default=1,
                        help="rounds of the memory run (default 1: ~10 min each; worst kept)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=None,
                        help="only these columns (the baseline paho5 always runs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"also write the report here (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.monotonic()
    contenders, unavailable = available_contenders()
    if args.contenders:
        contenders = [c for c in contenders if c == BASELINE or c in args.contenders]
    with tempfile.TemporaryDirectory(prefix="tars-bench-") as tmp:
        broker = Broker(Path(tmp), extra=BROKER_EXTRA)
        if NODELAY not in broker.config_text():
            broker.extra += NODELAY + "\n"
        broker.start()
        try:
            bench = Bench(broker, sizes, rounds, contenders, args.rss_rounds)
            bench.notes.extend(unavailable)
            for name in args.only:
                _progress(f"{name} ...")
                getattr(bench, name)()
        finally:
            broker.stop()
    setup = (f"sizes: {asdict(sizes)}; rounds: {rounds} (memory: {args.rss_rounds}, the worst"
             f" kept); figures are medians of the rounds, ratios medians of per-round ratios;"
             f" wall time {time.monotonic() - started:.0f} s")
    bench.notes.insert(0, f"receive path: every subscriber fed by the {LABELS[bench.feeder]}"
                          " publisher")
    text = report(bench.results, setup=setup, rss_count=sizes.rss, notes=bench.notes,
                  failures=bench.failures)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    _progress(f"written to {args.out}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
