"""``python -m bench.run --quick`` end to end, so the benchmark cannot rot unnoticed.

It checks the report's shape only: every row, every contender, a figure in every cell
that should have one, no failed run, a memory run in which every message was handled,
the report written where ``--out`` says. Speed is never asserted (the figures of a quick
run on a busy machine mean nothing).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = ["tars sync", "tars.aio", "aiomqtt", "paho 3.1.1", "mosquitto C",
              "tars sync 3.1.1"]
ROWS = [  # the main table, in order; every contender has a figure in each
    "QoS 0 end-to-end", "receive path alone", "publish path alone", "QoS 1 end-to-end",
    "p99 latency at 1k msg/s, QoS 0", "p99 latency at 1k msg/s, QoS 1",
    "p99.9 latency at 1k msg/s, QoS 0", "p99.9 latency at 1k msg/s, QoS 1",
    "RSS growth over", "messages not handled in that run",
]
ESTOP_ROWS = ["e-stop, publish → servo pins still", "e-stop, publish → `stopped` status"]
NUMBER = r"\d[\d,]*(\.\d+)?×?"


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@pytest.mark.slow
@pytest.mark.timeout(240)  # ~15 s alone; much more when the machine is busy
def test_the_quick_bench_prints_every_row_for_every_contender(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=230)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    report = done.stdout
    assert out.read_text().strip() == report.strip()
    assert "FAILED" not in report and "failed" not in report, report

    lines = report.splitlines()
    header = next(line for line in lines if line.startswith("|  | tars sync"))
    assert cells(header)[1:] == CONTENDERS
    main = lines[lines.index(header) + 2:]
    main = main[:next(i for i, line in enumerate(main) if not line.startswith("|"))]
    assert len(main) == len(ROWS) + len(ESTOP_ROWS), main
    for row, line in zip(ROWS + ESTOP_ROWS, main, strict=True):
        label, *values = cells(line)
        assert label.startswith(row), (row, line)
        assert len(values) == len(CONTENDERS), line
        wanted = values if row in ROWS else values[:1]  # e-stop: the sync client's service
        for value in wanted:
            assert all(re.fullmatch(NUMBER, part) for part in value.split(" / ")), line
        if row not in ROWS:
            assert values[1:] == ["—"] * (len(CONTENDERS) - 1), line

    absolute = next(line for line in lines if line.startswith("| absolute"))
    assert cells(absolute)[1:] == ["paho 5 (= 1.0)", *CONTENDERS]
    reconnect = next(line for line in lines if line.startswith("| reconnect: broker up"))
    paho, tars, aio, *others = cells(reconnect)[1:]
    assert all(re.fullmatch(NUMBER, value) for value in (paho, tars, aio)), reconnect
    assert "| target | tars sync | tars.aio |" in report
    assert "messages not handled in the RSS run | 0 | 0 | 0 | 0 | 0 | 0 |" in report
