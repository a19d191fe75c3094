"""Speech: recognition accuracy over the robot's commands, end of speech → stt/final, and
how fast a tts stop cuts the sound.

1. **Accuracy** (in-process, the same engine tars-stt runs): every phrase the router acts
   on (every other one with "please" in front) and a set of questions, spoken by several
   espeak-ng voices at several rates. Word error rate against the spoken text, command
   accuracy (the router would do what was asked), and how many questions the router would
   have taken for a command. For each ``TARS_STT_MODE``.
2. **End of speech → stt/final**: tars-stt as a process reading a FIFO
   (``TARS_STT_INPUT=stream:``), fed in real time; from the last sample of speech to
   ``stt/final`` at this process (includes the endpointer's silence wait, 0.6 s).
3. **tts stop**: tars-tts as a process with the real-time WAV sink; a long text, ``stop``
   0.5-1.5 s into it: audio written after the stop was sent (WAV length minus the time
   from ``speaking_start`` to the stop), and the stop → ``stopped`` / ``speaking_end``.

    .venv/bin/python -m bench.speech [--quick] [--only accuracy latency stop]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

from services.audio import silence
from services.audio_render import user_line
from services.conversation import parse_intent
from services.stt_engines import Pocketsphinx
from services.stt_grammar import command_phrases
from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker

ROOT = Path(__file__).resolve().parents[1]
VOICES = ("en-us", "en-gb", "en-us+m3", "en-gb-x-rp+f2", "en+f3")
RATES = (140, 175, 210)
QUESTIONS = ("what is the weather", "tell me a joke", "how are you today", "what time is it",
             "who made you", "can you hear me", "what is your name", "do you like music",
             "where are we going", "i am hungry", "my cat is called tom",
             "do you remember my cat")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def edits(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def accuracy(quick: bool, modes: list[str]) -> list[str]:
    phrases = [("please " if n % 2 else "") + p for n, p in enumerate(command_phrases())]
    voices, rates = (VOICES[:2], RATES[1:2]) if quick else (VOICES, RATES)
    spoken = [(text, v, r) for v in voices for r in rates for text in (*phrases, *QUESTIONS)]
    print(f"accuracy: rendering {len(spoken)} lines", file=sys.stderr, flush=True)
    audio = [user_line(text, voice=v, wpm=r).data for text, v, r in spoken]
    voice_rows = ["| mode | " + " | ".join(voices) + " |", "|---|" + "---|" * len(voices)]
    rows = ["| mode | command accuracy | command WER | question WER | questions taken"
            " for a command | seconds per line |", "|---|---|---|---|---|---|"]
    for mode in modes:
        engine = Pocketsphinx(mode=mode)
        right = taken = 0
        by_voice = dict.fromkeys(voices, 0)
        errors = {"cmd": [0, 0], "q": [0, 0]}
        t0 = time.perf_counter()
        for (text, voice, rate), pcm in zip(spoken, audio, strict=True):
            heard = engine.recognize(pcm)
            got = heard.text if heard else ""
            kind = "q" if text in QUESTIONS else "cmd"
            errors[kind][0] += edits(words(text), words(got))
            errors[kind][1] += len(words(text))
            same = parse_intent(got)[1:] == parse_intent(text)[1:]
            if kind == "cmd":
                right += same
                by_voice[voice] += same
                if not same:
                    print(f"  {mode}: {voice} {rate}: {text!r} -> {got!r}", file=sys.stderr)
            else:
                taken += not same
        per_line = (time.perf_counter() - t0) / len(spoken)
        runs = len(voices) * len(rates)
        ncmd, nq = len(phrases) * runs, len(QUESTIONS) * runs
        rows.append(f"| {mode} | {right}/{ncmd} = {right / ncmd:.1%} |"
                    f" {errors['cmd'][0] / errors['cmd'][1]:.1%} |"
                    f" {errors['q'][0] / errors['q'][1]:.1%} | {taken}/{nq} = {taken / nq:.1%} |"
                    f" {per_line:.3f} |")
        voice_rows.append(f"| {mode} | " + " | ".join(
            f"{by_voice[v] / (len(phrases) * len(rates)):.1%}" for v in voices) + " |")
    return [f"{len(phrases)} command phrases and {len(QUESTIONS)} questions; voices"
            f" {', '.join(voices)}; rates {', '.join(map(str, rates))} words per minute.", "",
            *rows, "", "Command accuracy by voice:", "", *voice_rows]


class Watch:
    """Arrival times of messages, by topic, at this process."""

    def __init__(self, client: MQTTClient) -> None:
        self.cond, self.seen = threading.Condition(), list[tuple[float, Message]]()
        client.subscribe("#", self._on, qos=1)

    def _on(self, msg: Message) -> None:
        with self.cond:
            self.seen.append((time.monotonic(), msg))
            self.cond.notify_all()

    def wait(self, pred: Callable[[Message], bool], after: int, timeout: float = 30
             ) -> tuple[float, Message]:
        def find() -> tuple[float, Message] | None:
            return next((s for s in self.seen[after:] if pred(s[1])), None)

        with self.cond:
            assert self.cond.wait_for(lambda: find() is not None, timeout), "timed out"
            found = find()
            assert found is not None
            return found

    def mark(self) -> int:
        with self.cond:
            return len(self.seen)


def service(name: str, broker: Broker, work: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "MQTT_URL": broker.url, "TARS_LOG_LEVEL": "WARNING", **env}
    log = open(work / f"{name}.log", "wb")  # noqa: SIM115 (the child holds it)
    return subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=environ,
                            stdout=log, stderr=log)


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{statistics.median(ms):.0f} / {ms[0]:.0f} / {ms[-1]:.0f}"


def latency(broker: Broker, work: Path, rounds: int) -> list[str]:
    fifo = work / "mic"
    os.mkfifo(fifo)
    proc = service("stt", broker, work, TARS_STT_INPUT=f"stream:{fifo}")
    results: list[float] = []
    with MQTTClient(MQTTConfig(url=broker.url, client_id="bench-stt")) as client:
        watch = Watch(client)
        watch.wait(lambda m: m.topic == "system/health/stt", 0)
        fd = os.open(fifo, os.O_WRONLY)
        try:
            lines = [p for p in command_phrases() if " " in p][:rounds]
            for text in lines:
                pcm = user_line(text)
                speech = pcm.data[:-len(silence(pcm.rate, 0.3))]  # up to the last sample
                mark = watch.mark()
                for chunk in range(0, len(speech), 960):  # 30 ms, in real time
                    os.write(fd, speech[chunk:chunk + 960])
                    time.sleep(0.03)
                spoke = time.monotonic()

                def trailing_silence() -> None:  # 1.8 s of quiet after the speech, in real time
                    for _ in range(60):
                        os.write(fd, silence(16000, 0.03))
                        time.sleep(0.03)

                quiet = threading.Thread(target=trailing_silence)
                quiet.start()
                at, msg = watch.wait(lambda m: m.topic == "stt/final", mark)
                results.append(at - spoke)
                print(f"  {text!r} -> {msg.data['text']!r} after {at - spoke:.3f} s",
                      file=sys.stderr)
                quiet.join()
        finally:
            os.close(fd)
            proc.terminate()
            proc.wait(10)
    return ["| from the last sample of speech to stt/final (ms, median / min / max) |",
            "|---|", f"| {summary(results)} over {len(results)} commands |"]


LONG = ("This is a long answer that the robot reads out, sentence by sentence. It goes on for"
        " a while, so that there is time to stop it. And then it goes on again.")


def stop(broker: Broker, work: Path, rounds: int) -> list[str]:
    said = work / "said"
    proc = service("tts", broker, work, TARS_TTS_OUTPUT=f"wav:{said}")
    after, to_stopped, to_end = [], [], []
    rng = random.Random(1)
    with MQTTClient(MQTTConfig(url=broker.url, client_id="bench-tts")) as client:
        watch = Watch(client)
        watch.wait(lambda m: m.topic == "system/health/tts", 0)
        for n in range(rounds):
            utt, mark = f"s{n}", watch.mark()
            client.publish_event("tts/say", "tts.say", {"text": LONG, "utt_id": utt}).wait(5)
            started, _ = watch.wait(lambda m: m.data.get("event") == "speaking_start", mark)
            time.sleep(rng.uniform(0.5, 1.5))
            sent = time.monotonic()
            client.publish_event("tts/control", "tts.control", {"action": "stop"}).wait(5)
            stopped, _ = watch.wait(lambda m: m.data.get("event") == "stopped", mark)
            ended, _ = watch.wait(lambda m: m.data.get("event") == "speaking_end", mark)
            with wave.open(str(next(said.glob(f"*-{utt}.wav"))), "rb") as wav:
                length = wav.getnframes() / wav.getframerate()
            after.append(max(0.0, length - (sent - started)))
            to_stopped.append(stopped - sent)
            to_end.append(ended - sent)
        proc.terminate()
        proc.wait(10)
    return ["| measured over rounds (ms, median / min / max) | |", "|---|---|",
            f"| audio written after the stop was sent | {summary(after)} |",
            f"| stop sent → `stopped` received | {summary(to_stopped)} |",
            f"| stop sent → `speaking_end` received (the sound has ended) | {summary(to_end)} |",
            f"| rounds | {rounds} |"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two voices, one rate, 3 rounds")
    parser.add_argument("--only", nargs="+", default=["accuracy", "latency", "stop"])
    parser.add_argument("--modes", nargs="+", default=["both", "commands", "dictation"],
                        help="TARS_STT_MODE values to measure the accuracy of")
    args = parser.parse_args()
    rounds = 3 if args.quick else 10
    out = [f"# Speech bench ({time.strftime('%Y-%m-%d')}, load {os.getloadavg()[0]:.2f})", ""]
    with tempfile.TemporaryDirectory(prefix="tars-bench-speech-") as tmp:
        work = Path(tmp)
        broker = Broker(work / "broker").start()
        try:
            if "accuracy" in args.only:
                out += ["## Recognition (pocketsphinx, espeak-ng voices)", "",
                        *accuracy(args.quick, args.modes), ""]
            if "latency" in args.only:
                out += ["## End of speech → stt/final", "", *latency(broker, work, rounds), ""]
            if "stop" in args.only:
                out += ["## tts stop (WAV sink, real time)", "", *stop(broker, work, rounds), ""]
        finally:
            broker.stop()
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
