"""The bench's report: ratios to raw paho MQTT 5, absolute values, the targets, notes.

Every metric holds one value per round for each contender (NaN where a run failed).
A ratio is the median over rounds of (contender / raw paho MQTT 5 in the same round), so
a slow moment of the machine, which both runs of a round share, cancels out.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence

import paho.mqtt as paho_pkg
import ujson

from tars_mqtt.testing import MOSQUITTO

__all__ = ["BASELINE", "COLUMNS", "LABELS", "Results", "absolute", "machine", "main_table",
           "ratio", "report", "summary", "targets"]

Results = dict[str, dict[str, list[float]]]  # metric -> contender -> one value per round

BASELINE = "paho5"
COLUMNS = ("tars", "aio", "aiomqtt", "paho311", "mosquitto", "tars311")  # the issue's, then ours
LABELS = {"paho5": "paho 5 (= 1.0)", "tars": "tars sync", "aio": "tars.aio",
          "aiomqtt": "aiomqtt", "paho311": "paho 3.1.1", "mosquitto": "mosquitto C",
          "tars311": "tars sync 3.1.1"}
THROUGHPUT = ("qos0_e2e", "qos0_rx", "qos0_pub", "qos1_e2e")
# memory and reconnect: the worst round is reported, not the median
WORST = frozenset({"rss_growth", "rss_idle_growth", "rss_peak", "rss_drops", "rc_up",
                   "rc_down"})


def summary(results: Results, metric: str, lib: str) -> float:
    values = [v for v in results.get(metric, {}).get(lib, []) if not math.isnan(v)]
    if not values:
        return math.nan
    return max(values) if metric in WORST else statistics.median(values)


def ratio(results: Results, metric: str, lib: str) -> float:
    """Median over rounds of lib / baseline, each pair from the same round."""
    mine = results.get(metric, {}).get(lib, [])
    base = results.get(metric, {}).get(BASELINE, [])
    pairs = [m / b for m, b in zip(mine, base, strict=False)
             if not (math.isnan(m) or math.isnan(b)) and b]
    return statistics.median(pairs) if pairs else math.nan


def _cell(value: float, fmt: str) -> str:
    return "failed" if math.isnan(value) else fmt.format(value)


# metric (or two, shown "p50 / p99"), label, kind: ratio | times | value
Row = tuple[tuple[str, ...], str, str]


def _rows(rss_count: int) -> list[Row]:
    return [
        (("qos0_e2e",), "QoS 0 end-to-end", "ratio"),
        (("qos0_rx",), "receive path alone", "ratio"),
        (("qos0_pub",), "publish path alone", "ratio"),
        (("qos1_e2e",), "QoS 1 end-to-end", "ratio"),
        (("lat0_p99",), "p99 latency at 1k msg/s, QoS 0 (lower is better)", "times"),
        (("lat1_p99",), "p99 latency at 1k msg/s, QoS 1 (lower is better)", "times"),
        (("lat0_p999",), "p99.9 latency at 1k msg/s, QoS 0 (ms)", "value"),
        (("lat1_p999",), "p99.9 latency at 1k msg/s, QoS 1 (ms)", "value"),
        (("rss_growth",), f"RSS growth over {rss_count:,} handled messages (MB)", "value"),
        (("rss_drops",), "messages not handled in that run (must be 0)", "value"),
        (("estop_pins_p50", "estop_pins_p99"),
         "e-stop, publish → servo pins still, p50 / p99 (ms)", "value"),
        (("estop_status_p50", "estop_status_p99"),
         "e-stop, publish → `stopped` status, p50 / p99 (ms)", "value"),
    ]


_FORMATS = {"rss_growth": "{:.1f}", "rss_drops": "{:,.0f}", "rss_peak": "{:.1f}"}


def _value_cell(results: Results, metrics: tuple[str, ...], lib: str, kind: str) -> str:
    if not any(lib in results.get(m, {}) for m in metrics):
        return "—"
    if kind == "ratio":
        return _cell(ratio(results, metrics[0], lib), "{:.2f}")
    if kind == "times":
        return _cell(ratio(results, metrics[0], lib), "{:.2f}×")
    return " / ".join(_cell(summary(results, m, lib), _FORMATS.get(m, "{:.2f}"))
                      for m in metrics)


def _table(header: str, libs: tuple[str, ...], rows: list[Row],
           cell: Callable[[tuple[str, ...], str, str], str]) -> str:
    lines = [f"| {header} | " + " | ".join(LABELS[lib] for lib in libs) + " |",
             "|---|" + "---:|" * len(libs)]
    for metrics, label, kind in rows:
        lines.append(f"| {label} | " + " | ".join(cell(metrics, lib, kind) for lib in libs)
                     + " |")
    return "\n".join(lines)


def main_table(results: Results, rss_count: int) -> str:
    """The issue's layout: ratios to raw paho MQTT 5 (= 1.0) for the throughput and p99
    rows, milliseconds and megabytes where the target is absolute."""
    return _table("", COLUMNS, _rows(rss_count),
                  lambda metrics, lib, kind: _value_cell(results, metrics, lib, kind))


_ABSOLUTE: list[Row] = [
    (("qos0_e2e",), "QoS 0 end-to-end (msg/s)", "{:,.0f}"),
    (("qos0_rx",), "receive path alone (msg/s)", "{:,.0f}"),
    (("cpu_rx",), "  its subscriber CPU per message (µs)", "{:.1f}"),
    (("qos0_pub",), "publish path alone (msg/s)", "{:,.0f}"),
    (("qos1_e2e",), "QoS 1 end-to-end (msg/s)", "{:,.0f}"),
    (("lat0_p50", "lat0_p99", "lat0_p999"), "latency at 1k msg/s, QoS 0, p50 / p99 / p99.9 (ms)",
     "{:.2f}"),
    (("lat1_p50", "lat1_p99", "lat1_p999"), "latency at 1k msg/s, QoS 1, p50 / p99 / p99.9 (ms)",
     "{:.2f}"),
    (("rc_up",), "reconnect: broker up → subscription restored (s, worst)", "{:.3f}"),
    (("rc_down",), "reconnect: broker down → subscription restored (s, worst)", "{:.3f}"),
    (("rss_growth",), "RSS growth after the first 10 % (MB)", "{:.1f}"),
    (("rss_idle_growth",), "RSS growth from idle, first message included (MB)", "{:.1f}"),
    (("rss_peak",), "peak RSS, VmHWM (MB)", "{:.1f}"),
    (("rss_drops",), "messages not handled in the RSS run", "{:,.0f}"),
]


def absolute(results: Results) -> str:
    """Every contender's own figures (median of the rounds), raw paho MQTT 5 included."""
    def cell(metrics: tuple[str, ...], lib: str, fmt: str) -> str:
        if not any(lib in results.get(m, {}) for m in metrics):
            return "—"
        return " / ".join(_cell(summary(results, m, lib), fmt) for m in metrics)
    return _table("absolute (median of rounds)", (BASELINE, *COLUMNS), _ABSOLUTE, cell)


def _check(value: float, ok: Callable[[float], bool], fmt: str) -> str:
    if math.isnan(value):
        return "failed"
    return f"{fmt.format(value)} {'yes' if ok(value) else '**NO**'}"


def targets(results: Results) -> str:
    """The targets for tars sync and tars.aio, each with its figure and whether it is met."""
    def at_least(metric: str, bound: float, lib: str) -> str:
        return _check(ratio(results, metric, lib), lambda v: v >= bound, "{:.2f}×")

    def at_most(metric: str, bound: float, lib: str, *, rel: bool = True) -> str:
        value = ratio(results, metric, lib) if rel else summary(results, metric, lib)
        return _check(value, lambda v: v <= bound, "{:.2f}×" if rel else "{:.2f} ms")

    def ahead(lib: str) -> str:
        rows = [ratio(results, m, lib) > ratio(results, m, "aiomqtt") for m in THROUGHPUT]
        return f"{sum(rows)} of {len(rows)} rows {'yes' if all(rows) else '**NO**'}"

    def estop(metric: str, bound: float, lib: str) -> str:
        if lib not in results.get(metric, {}):
            return "—"
        return at_most(metric, bound, lib, rel=False)

    def memory(lib: str) -> str:
        growth, drops = summary(results, "rss_growth", lib), summary(results, "rss_drops", lib)
        return _check(growth, lambda v: v < 5 and drops == 0,
                      "{:.1f} MB, " + f"{drops:,.0f} not handled")

    checks: list[tuple[str, Callable[[str], str]]] = [
        ("receive path ≥ 1.0×", lambda lib: at_least("qos0_rx", 1.0, lib)),
        ("QoS 0 end-to-end ≥ 0.8×", lambda lib: at_least("qos0_e2e", 0.8, lib)),
        ("publish path ≥ 0.8×", lambda lib: at_least("qos0_pub", 0.8, lib)),
        ("QoS 1 end-to-end ≥ 0.9×", lambda lib: at_least("qos1_e2e", 0.9, lib)),
        ("ahead of aiomqtt on the four rows above", ahead),
        ("p99 at 1k msg/s, QoS 0 ≤ 1.5× raw paho's", lambda lib: at_most("lat0_p99", 1.5, lib)),
        ("p99 at 1k msg/s, QoS 1 ≤ 1.5× raw paho's", lambda lib: at_most("lat1_p99", 1.5, lib)),
        ("p99.9 at 1k msg/s, QoS 0 ≤ 5 ms",
         lambda lib: at_most("lat0_p999", 5.0, lib, rel=False)),
        ("p99.9 at 1k msg/s, QoS 1 ≤ 5 ms",
         lambda lib: at_most("lat1_p999", 5.0, lib, rel=False)),
        ("e-stop: pins still ≤ 5 ms p99", lambda lib: estop("estop_pins_p99", 5.0, lib)),
        ("e-stop: `stopped` status ≤ 10 ms p99",
         lambda lib: estop("estop_status_p99", 10.0, lib)),
        ("RSS growth < 5 MB, nothing dropped", memory),
        ("reconnect ≤ 1.0 s from the broker back (min delay 0.5 s + 0.5)",
         lambda lib: _check(summary(results, "rc_up", lib), lambda v: v <= 1.0, "{:.3f} s")),
    ]
    lines = ["| target | tars sync | tars.aio |", "|---|---|---|"]
    lines += [f"| {name} | {check('tars')} | {check('aio')} |" for name, check in checks]
    return "\n".join(lines)


def machine() -> str:
    """What the figures were measured on (they mean little without it)."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                          if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=5)
        mosquitto = (out.stdout or out.stderr).split("\n", 1)[0].split()[-1]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        mosquitto = "?"
    return (f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python"
            f" {platform.python_version()}, paho-mqtt {paho_pkg.__version__},"
            f" mosquitto {mosquitto}, load average {os.getloadavg()[0]:.1f}")


def report(results: Results, *, setup: str, rss_count: int, notes: Sequence[str],
           failures: Sequence[str]) -> str:
    """The whole report: the three tables, the notes, failures, and every round's values."""
    return "\n".join([
        f"tars-mqtt bench, {time.strftime('%Y-%m-%d %H:%M %Z')}: {machine()}",
        setup,
        "",
        "Ratios to raw paho-mqtt MQTT 5 in the same round (higher is better unless said):",
        "",
        main_table(results, rss_count),
        "",
        absolute(results),
        "",
        targets(results),
        "",
        "- old py-tars client: not measured (its code is not available here)",
        *[f"- {note}" for note in notes],
        *[f"- FAILED {failure}" for failure in failures],
        "",
        "all values per round: " + ujson.dumps(
            {m: {lib: [round(x, 4) for x in xs] for lib, xs in d.items()}
             for m, d in results.items()}),
    ])
