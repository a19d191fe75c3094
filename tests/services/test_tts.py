"""tars-tts's pure parts and its player, with a fake engine and a recording sink."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.audio import Pcm, decode_wav
from services.audio_out import Pacer, WavDir, sink_from_env
from services.tts import utterance_from
from services.tts_engines import Espeak, Piper, SpeechError, engine_from_env
from services.tts_player import STUCK_AFTER, Player
from services.tts_queue import QueueFull, SpeechQueue, Status, Utterance
from services.tts_text import split_sentences
from tars_mqtt import ConfigError
from tars_mqtt.timing import ManualClock


# Sentences ------------------------------------------------------------------------------
def test_sentences_are_split_at_their_ends_and_long_ones_at_commas() -> None:
    assert split_sentences("Hi.  How are you?\nFine!") == ["Hi.", "How are you?", "Fine!"]
    assert split_sentences(" ... ") == []
    long = "one, " * 60 + "end."
    parts = split_sentences(long, max_chars=50)
    assert all(len(p) <= 50 for p in parts) and " ".join(parts).replace(",,", ",") == long.strip()
    assert split_sentences("x" * 120, max_chars=50) == ["x" * 50, "x" * 50, "x" * 20]


# The queue ------------------------------------------------------------------------------
def events(found: list[Status]) -> list[tuple[str, str]]:
    return [(s.event, s.utt_id) for s in found]


def test_the_queue_plays_in_order_and_pause_resume_apply_only_while_speaking() -> None:
    q = SpeechQueue(limit=2)
    a, b = Utterance("a", "one"), Utterance("b", "two")
    q.say(a)
    q.say(b)
    with pytest.raises(QueueFull):
        q.say(Utterance("c", "three"))
    assert events(q.control("pause")) == []  # nothing speaks yet
    assert q.next() is a and q.begin(b) is None  # only the head can begin
    begun = q.begin(a)
    assert begun is not None and events(begun[1]) == [("speaking_start", "a")]
    assert q.begin() is None  # one at a time
    assert events(q.control("pause")) == [("paused", "a")]
    assert events(q.control("pause")) == []
    assert events(q.control("resume")) == [("resumed", "a")]
    assert events(q.end(a)) == [("speaking_end", "a")]
    assert q.next() is b


def test_stop_drops_the_queue_and_ends_the_current_once_the_player_has_cut_it() -> None:
    q = SpeechQueue()
    a = Utterance("a", "one")
    q.say(a)
    q.begin()
    q.say(Utterance("b", "two"))
    generation = q.generation
    assert events(q.control("stop")) == [("stopped", "b"), ("stopped", "a")]
    assert q.generation == generation + 1 and q.state == "stopping"
    assert events(q.control("stop")) == [] and events(q.control("resume")) == []
    assert events(q.end(a)) == [("speaking_end", "a")] and q.state == "idle"
    assert q.control("mute") == [] and q.muted
    with pytest.raises(ValueError, match="unknown action 'louder'"):
        q.control("louder")


def test_tts_say_is_checked_before_it_is_queued() -> None:
    utt = utterance_from({"text": " Hi. ", "utt_id": "x", "voice": "en-gb", "rate": 200})
    assert utt == Utterance("x", "Hi.", "en-gb", 200.0)
    assert isinstance(utterance_from({"text": "hi"}), Utterance)  # an id is made up
    for data, why in (([], "object"), ({"text": 3}, "type int"), ({"text": "  "}, "empty"),
                      ({"text": "a" * 3000}, "3000 characters"),
                      ({"text": "hi", "voice": "--output=/x"}, "not a voice name"),
                      ({"text": "hi", "rate": 5}, "out of range")):
        found = utterance_from(data)
        assert isinstance(found, str) and why in found, (data, found)
    nul = utterance_from({"text": "a\x00b\x1bc\td\u0085e"})  # no control reaches an engine
    assert isinstance(nul, Utterance) and nul.text == "a b c\td\u0085e"
    assert utterance_from({"text": "\x00\x01"}) == "text is empty"


def test_an_engine_that_raises_anything_costs_a_sentence_not_the_player() -> None:
    class Raising(FakeEngine):
        def render(self, text: str, voice: str | None = None,
                   rate: float | None = None) -> Pcm:
            if text == "Bad.":
                raise ValueError("embedded null byte")
            return super().render(text, voice, rate)

    ended: list[str] = []
    done = threading.Event()

    def announce(found: list[Status]) -> None:
        ended.extend(s.utt_id for s in found if s.event == "speaking_end")
        if "u2" in ended:
            done.set()

    engine, sink = Raising(), GatedSink()
    player = Player(engine, sink, announce)
    player.start()
    player.say(Utterance("u1", "Bad."))  # its first sentence: rendered before it starts
    player.say(Utterance("u2", "Good."))
    for _ in range(5):
        sink.gate.release()
    assert done.wait(5) and ended == ["u1", "u2"]
    assert player.alive() and player.tally["render_failed"] == 1 and engine.said == ["Good."]
    player.close()


# The player -----------------------------------------------------------------------------
class FakeEngine:
    name = "fake"

    def __init__(self, fail: str | None = None) -> None:
        self.fail, self.said = fail, list[str]()

    def render(self, text: str, voice: str | None = None, rate: float | None = None) -> Pcm:
        if text == self.fail:
            raise SpeechError("cannot")
        self.said.append(text)
        return Pcm(b"\x01\x00" * 1600, 16000)  # 0.1 s: five chunks


class GatedSink:
    """Records what is played; each write waits until the test lets one chunk through."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.gate = threading.Semaphore(0)

    def open(self, rate: int, name: str) -> None:
        self.log.append(("open", name))

    def write(self, chunk: bytes) -> None:
        self.gate.acquire()
        self.log.append(chunk)

    def close(self, cut: bool = False) -> None:
        self.log.append(("close", cut))


def test_the_player_speaks_sentence_by_sentence_and_a_stop_cuts_between_chunks() -> None:
    announced: list[tuple[str, str]] = []
    done = threading.Event()

    def announce(found: list[Status]) -> None:
        announced.extend(events(found))
        if any(s.event == "speaking_end" for s in found):
            done.set()

    engine, sink = FakeEngine(fail="Broken."), GatedSink()
    player = Player(engine, sink, announce)
    player.start()
    player.say(Utterance("u", "One. Broken. Two."))
    for _ in range(10):
        sink.gate.release()
    assert done.wait(5)
    assert engine.said == ["One.", "Two."] and player.tally["render_failed"] == 1
    assert sink.log[0] == ("open", "u") and sink.log[-1] == ("close", False)
    assert len([c for c in sink.log if isinstance(c, bytes)]) == 10

    done.clear()
    sink.log.clear()
    player.control("mute")
    player.say(Utterance("v", "Long."))
    sink.gate.release()
    sink.gate.release()
    while len(sink.log) < 3:
        threading.Event().wait(0.01)
    player.control("stop")
    sink.gate.release()  # the chunk in flight finishes; nothing after it
    assert done.wait(5)
    assert sink.log[1] == bytes(640) and sink.log[-1] == ("close", True)  # muted, then cut
    assert announced[-3:] == [("speaking_start", "v"), ("stopped", "v"), ("speaking_end", "v")]
    player.close()
    assert not player.alive()


# Output -----------------------------------------------------------------------------------
def test_the_wav_sink_writes_each_utterance_in_real_time(tmp_path: Path) -> None:
    clock = ManualClock()
    sink = WavDir(tmp_path, clock=clock)
    sink.open(16000, "../u 1")
    sink.write(bytes(3200))  # 0.1 s
    sink.write(bytes(3200))
    sink.close()
    assert sink.last == tmp_path / "0001-.._u_1.wav"
    assert decode_wav(sink.last.read_bytes()).seconds == pytest.approx(0.2)
    assert clock.now() == pytest.approx(0.2)  # it waited out the audio's own time


def test_a_pacer_that_was_held_up_plays_on_from_now() -> None:
    clock = ManualClock()
    pacer = Pacer(clock)
    pacer.restart()
    clock.advance(1.0)  # a pause
    pacer.played(0.1)
    assert clock.now() == pytest.approx(1.0)
    pacer.played(0.1)
    assert clock.now() == pytest.approx(1.1)


def test_settings_fail_fast_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TARS_TTS_OUTPUT='speaker'"):
        sink_from_env({"TARS_TTS_OUTPUT": "speaker"})
    assert isinstance(sink_from_env({"TARS_TTS_OUTPUT": f"wav:{tmp_path}"}), WavDir)
    with pytest.raises(ConfigError, match="TARS_TTS_RATE"):
        engine_from_env({"TARS_TTS_RATE": "fast"})
    with pytest.raises(ConfigError, match="TARS_TTS_PIPER_MODEL=.*is not a file"):
        engine_from_env({"TARS_TTS_PIPER_MODEL": str(tmp_path / "none.onnx")})
    with pytest.raises(ConfigError, match="'no-such-espeak' is not installed"):
        Espeak(command="no-such-espeak")


# Engines ---------------------------------------------------------------------------------
def test_espeak_renders_a_sentence_and_takes_a_leading_dash_as_text(tmp_path: Path) -> None:
    pcm = Espeak().render("-v hello", rate=300)
    assert pcm.rate == 22050 and 0.2 < pcm.seconds < 2.0
    broken = tmp_path / "espeak"
    broken.write_text("#!/bin/sh\necho 'no voices' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(SpeechError, match="espeak-ng exited with 3: no voices"):
        Espeak(command=str(broken)).render("hi")
    with pytest.raises(SpeechError, match="embedded null byte"):
        Espeak().render("a\x00b")


def test_piper_is_wired_to_the_voice_file_and_its_pace(tmp_path: Path) -> None:
    model = tmp_path / "en_US-test.onnx"
    model.write_bytes(b"onnx")
    (tmp_path / "en_US-test.onnx.json").write_text("{}")
    calls: list[Any] = []

    class Voice:
        @staticmethod
        def load(path: str, config_path: str | None = None) -> Voice:
            calls.append(("load", path, config_path))
            return Voice()

        def synthesize(self, text: str, syn_config: Any = None) -> list[Any]:
            calls.append(("say", text, syn_config))
            chunk = SimpleNamespace(sample_rate=22050, sample_width=2, sample_channels=1,
                                    audio_int16_bytes=b"\x00\x01" * 100)
            return [chunk, chunk]

    fake = SimpleNamespace(PiperVoice=Voice, SynthesisConfig=lambda **kw: kw)
    engine = Piper(model, loader=lambda: fake)
    pcm = engine.render("Hello.", rate=350)
    assert pcm == Pcm(b"\x00\x01" * 200, 22050)
    assert calls == [("load", str(model), str(model) + ".json"),
                     ("say", "Hello.", {"length_scale": 0.5})]

    def missing() -> Any:
        raise ImportError("no piper")

    with pytest.raises(ConfigError, match="piper-tts is not installed"):
        Piper(model, loader=missing)


def test_an_engine_that_hangs_makes_the_player_report_itself_wedged() -> None:
    """The player thread stays alive while a render never returns (a stuck voice model):
    only the time it has waited shows that nothing will be said any more."""
    now = [100.0]
    entered, release = threading.Event(), threading.Event()

    class Hanging(FakeEngine):
        def render(self, text: str, voice: str | None = None,
                   rate: float | None = None) -> Pcm:
            entered.set()
            release.wait(10)
            return super().render(text, voice, rate)

    ended = threading.Event()

    def announce(found: list[Status]) -> None:
        if any(s.event == "speaking_end" for s in found):
            ended.set()

    sink = GatedSink()
    player = Player(Hanging(), sink, announce, clock=lambda: now[0])
    player.start()
    try:
        player.say(Utterance("u", "Hello."))
        assert entered.wait(5) and player.liveness() is None
        deadline = time.monotonic() + 5  # until the player thread waits on that render
        while player._timer._since is None:
            assert time.monotonic() < deadline, "the player never waited on the render"
            threading.Event().wait(0.001)
        now[0] += STUCK_AFTER + 1
        assert "waited 61 s on one sentence" in (player.liveness() or "")
        release.set()
        for _ in range(5):
            sink.gate.release()
        assert ended.wait(5) and player.liveness() is None
    finally:
        release.set()
        player.close()
    assert player.liveness() is None  # closed: not dead
