"""Time from ``stt/final`` to the router's first ``tts/say``: streamed answer vs whole answer.

Starts mosquitto, a local OpenAI-compatible SSE server whose tokens come every
``--interval`` s (``tests.support.openai_server``), and ``tars-llm`` + ``tars-router`` as
processes; then, for the router speaking as the answer streams (``TARS_ROUTER_STREAM=1``)
and waiting for the whole answer (``=0``), publishes a question ``--rounds`` times and
measures, in this process's monotonic clock, stt/final → first tts/say and → llm/response.

    .venv/bin/python -m bench.llm [--rounds 10] [--tokens 40] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker
from tests.support.openai_server import Reply, running

ROOT = Path(__file__).resolve().parents[1]


def tokens(count: int) -> tuple[str, ...]:
    """``count`` word tokens, a sentence every ten: the first one ends at token 10."""
    words = [f" word{n}" for n in range(count)]
    return tuple(w + ("." if n % 10 == 9 else "") for n, w in enumerate(words))


class Clock:
    """Arrival times of the first tts/say and of llm/response after each question."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.first_say: float | None = None
        self.answer: float | None = None

    def on(self, msg: Message) -> None:
        now = time.monotonic()
        with self.cond:
            if msg.topic == "tts/say" and self.first_say is None:
                self.first_say = now
            elif msg.topic == "llm/response":
                self.answer = now
            self.cond.notify_all()


def run_mode(broker: Broker, url: str, stream: bool, rounds: int, work: Path
             ) -> tuple[list[float], list[float]]:
    env = {**os.environ, "MQTT_URL": broker.url, "TARS_LLM_URL": url, "TARS_LLM_MODEL": "bench",
           "TARS_LLM_MEMORY_K": "0", "TARS_ROUTER_STREAM": "1" if stream else "0",
           "TARS_ROUTER_LLM_TIMEOUT": "30", "TARS_LOG_LEVEL": "WARNING"}
    procs = [subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env,
                              stdout=open(work / f"{name}-{stream}.log", "wb"),  # noqa: SIM115
                              stderr=subprocess.STDOUT) for name in ("llm", "router")]
    clock = Clock()
    cfg = MQTTConfig(url=broker.url, client_id=f"bench-{stream}", enable_health=False,
                     enable_heartbeat=False)
    first: list[float] = []
    whole: list[float] = []
    with MQTTClient(cfg) as client:
        ready: set[str] = set()
        client.subscribe("system/health/+", lambda m: ready.add(m.topic.rsplit("/", 1)[1])
                         if isinstance(m.data, dict) and m.data.get("event") == "ready"
                         else None, qos=1)
        client.subscribe("tts/say", clock.on, qos=1)
        client.subscribe("llm/response", clock.on, qos=1)
        deadline = time.monotonic() + 30
        while not {"llm", "router"} <= ready and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(rounds):
            with clock.cond:
                clock.first_say = clock.answer = None
            t0 = time.monotonic()
            client.publish_event("stt/final", "stt.final", {"text": "tell me a story"}).wait(5)
            with clock.cond:
                clock.cond.wait_for(lambda: clock.first_say is not None and
                                    clock.answer is not None, 60)
                assert clock.first_say is not None and clock.answer is not None
                first.append(clock.first_say - t0)
                whole.append(clock.answer - t0)
            time.sleep(0.3)  # the router back in a quiet state before the next question
    for proc in procs:
        proc.terminate()
        proc.wait(15)
    return first, whole


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.llm", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tars-bench-llm-") as tmp, running() as server:
        server.default = dataclasses.replace(Reply(), tokens=tokens(args.tokens),
                                             interval=args.interval)
        broker = Broker(Path(tmp) / "broker").start()
        try:
            print(f"{args.tokens} tokens, one every {args.interval * 1000:.0f} ms,"
                  f" {args.rounds} rounds (s, median / min / max)")
            print("| router | stt/final → first tts/say | stt/final → llm/response |")
            print("|---|---|---|")
            for stream in (True, False):
                first, whole = run_mode(broker, server.url, stream, args.rounds, Path(tmp))
                name = "speaks as it streams" if stream else "waits for the whole answer"
                print(f"| {name} | {_stats(first)} | {_stats(whole)} |", flush=True)
        finally:
            broker.stop()
    return 0


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} / {min(values):.3f} / {max(values):.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
