"""tars-stt's pure parts (endpointing, the mute, the grammar, the choice), its audio
checks and sources, and the faster-whisper engine's wiring with a fake model."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.audio import BadAudio, Pcm, decode_wav, encode_wav, resample
from services.audio_in import Piece, Spool, Stream, source_from_env
from services.audio_render import user_line
from services.common import StepTimer
from services.stt import STUCK_AFTER, Listener
from services.stt_endpoint import Endpointer, EndpointSettings, MuteGate
from services.stt_engines import Whisper, recognizer_from_env
from services.stt_grammar import Heard, build_grammar, choose, command_phrases
from tars_mqtt import ConfigError
from tests.services.support import FakeClient, message

FRAME = b"\x00\x00" * 480  # 30 ms at 16 kHz


# Endpointing ----------------------------------------------------------------------------
def run(ep: Endpointer, pattern: str) -> list[Any]:
    """Feed ``pattern`` (``s`` speech, ``.`` silence, one frame each); starts and ends."""
    out: list[Any] = []
    for n, mark in enumerate(pattern):
        seg = ep.feed(bytes([n % 256, 0]) * 480, mark == "s")
        if seg.started:
            out.append(("start", n))
        if seg.ended is not None:
            out.append(("end", n, len(seg.ended) // len(FRAME)))
    return out


def test_an_utterance_starts_after_three_voiced_frames_and_ends_after_the_silence() -> None:
    ep = Endpointer(EndpointSettings(frame=0.03, start=0.09, end=0.15, pre_roll=0.15))
    # a lone click does not start anything; three voiced frames do, with the pre-roll kept
    found = run(ep, "..s...." + "sss" + "s.s" + "....." + "...")
    assert found == [("start", 9), ("end", 17, 5 + 3 + 5)]
    assert not ep.speaking and ep.flush() is None


def test_a_long_utterance_is_cut_and_a_stream_that_ends_flushes_it() -> None:
    ep = Endpointer(EndpointSettings(frame=0.03, start=0.03, end=1.0, longest=0.3, pre_roll=0.03))
    assert run(ep, "s" * 12)[:2] == [("start", 0), ("end", 9, 10)]
    assert ep.speaking and len(ep.heard) == 2 * len(FRAME)
    assert ep.flush() is not None and not ep.speaking


def test_the_mute_lasts_from_speaking_start_to_a_tail_after_speaking_end() -> None:
    gate = MuteGate(tail=0.3, longest=10)
    assert not gate.muted(0)
    gate.status("speaking_start", 1.0)
    gate.status("paused", 2.0)
    assert gate.muted(2.5)
    gate.status("speaking_end", 3.0)
    assert gate.muted(3.2) and not gate.muted(3.31)
    gate.status("speaking_start", 5.0)  # its end is lost: the mute gives up after 10 s
    assert gate.muted(14.9) and not gate.muted(15.1)


# The grammar and the choice --------------------------------------------------------------
DICT = {"please": "P L IY Z", "wave": "W EY V", "turn": "T ER N", "left": "L EH F T"}


def test_the_grammar_holds_the_router_phrases_and_leaves_out_unknown_words() -> None:
    phrases = command_phrases()
    assert {"please", "wave", "turn left", "stop", "step forward"} - {"please"} <= set(phrases)
    grammar = build_grammar(DICT.get, ["wave", "turn left", "moonwalk", "wave!"])
    assert grammar.phrases == ("wave", "turn left")
    assert grammar.missing == ("moonwalk", "wave!")
    assert "public <command> = [please | tars] ( wave | turn left ) [please | tars];" \
        in grammar.jsgf
    assert grammar.extra_words == {"tars": "T AA R Z"}
    with pytest.raises(ValueError, match="no command phrase"):
        build_grammar(DICT.get, ["moonwalk"])


def test_a_command_wins_only_when_whole_and_scoring_at_least_as_well_as_dictation() -> None:
    wave, chat = Heard("please wave", 0.7), Heard("what is the weather", 0.6)
    assert choose(wave, chat) is wave
    assert choose(Heard("wave please", 0.5), chat) is chat  # forced onto the grammar
    assert choose(Heard("please", 0.9), chat) is chat  # not a whole command
    assert choose(Heard("wave please", 0.5), chat, mode="commands").text == "wave please"
    assert choose(wave, chat, mode="dictation") is chat
    assert choose(wave, None) is wave and choose(None, Heard(" ", 0.5)) is None
    assert choose(wave, chat, margin=1.5) is chat
    assert choose(Heard("please halt", 0.45), Heard("my cat is called tom", 0.3)).text \
        == "my cat is called tom"  # a weak command is not believed, however poor dictation


# Audio checks and sources ---------------------------------------------------------------
def test_wav_files_are_checked_for_what_the_recogniser_needs() -> None:
    pcm = Pcm(b"\x01\x00" * 16000, 16000)
    assert decode_wav(encode_wav(pcm), rate=16000) == pcm
    for data, why in ((b"RIFF....", "not a WAV file"),
                      (encode_wav(Pcm(b"\x01\x00" * 100, 8000)), "wrong rate: 8000 Hz"),
                      (encode_wav(Pcm(b"", 16000)), "empty")):
        with pytest.raises(BadAudio, match=why):
            decode_wav(data, rate=16000)
    down = resample(Pcm(b"\x10\x00" * 22050, 22050), 16000)
    assert down.rate == 16000 and abs(len(down.data) - 32000) <= 2


def test_the_spool_hears_each_complete_file_once_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.wav").write_bytes(encode_wav(Pcm(FRAME, 16000)))
    (tmp_path / "a.wav").write_bytes(b"junk")
    (tmp_path / ".c.wav").write_bytes(b"still being written")
    stop = threading.Event()
    pieces = []
    for piece in Spool(tmp_path, 16000).pieces(stop):
        pieces.append((piece.kind, piece.name))
        if piece.kind == "end":
            stop.set()
    assert pieces == [("bad", "a.wav"), ("begin", "b.wav"), ("audio", "b.wav"), ("end", "b.wav")]
    assert Piece("begin", "mic").recording is False
    assert [p.name for p in tmp_path.iterdir()] == [".c.wav"]  # heard once: deleted


def test_a_stream_reads_raw_samples_from_a_fifo_or_a_file(tmp_path: Path) -> None:
    path = tmp_path / "raw"
    path.write_bytes(FRAME * 3)
    stop = threading.Event()
    kinds = [(p.kind, len(p.data)) for p in Stream(path, 16000).pieces(stop)]
    assert kinds == [("begin", 0), ("audio", 960), ("audio", 960), ("audio", 960), ("end", 0)]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert Stream(fifo, 16000).fifo


def test_source_and_engine_settings_fail_fast_naming_the_variable(tmp_path: Path) -> None:
    for env, why in (({"TARS_STT_INPUT": "usb"}, "TARS_STT_INPUT='usb'"),
                     ({"TARS_STT_INPUT": f"dir:{tmp_path}/none"}, "is not a directory"),
                     ({"TARS_STT_INPUT": f"stream:{tmp_path}/none"}, "No such file")):
        with pytest.raises(ConfigError, match=why):
            source_from_env(16000, env)
    with pytest.raises(ConfigError, match="TARS_STT_MODE='guess'"):
        recognizer_from_env({"TARS_STT_MODE": "guess"})
    with pytest.raises(ConfigError, match="TARS_STT_WHISPER_MODEL=.* is not a directory"):
        recognizer_from_env({"TARS_STT_WHISPER_MODEL": str(tmp_path / "none")})


def test_whisper_runs_the_local_model_and_reports_its_language(tmp_path: Path) -> None:
    made: list[Any] = []

    class Model:
        def __init__(self, path: str, **options: Any) -> None:
            made.append((path, options))

        def transcribe(self, audio: Any, **options: Any) -> tuple[Any, Any]:
            made.append((len(audio), str(audio.dtype), options))
            segments = [SimpleNamespace(text=" Bonjour", avg_logprob=-0.2),
                        SimpleNamespace(text=" robot. ", avg_logprob=-0.4)]
            return iter(segments), SimpleNamespace(language="fr")

    engine = Whisper(tmp_path, loader=lambda: SimpleNamespace(WhisperModel=Model))
    heard = engine.recognize(b"\x00\x10" * 1600)
    assert heard is not None and heard.text == "Bonjour robot."
    assert heard.score == pytest.approx(0.7408, abs=1e-3) and engine.lang == "fr"
    assert made == [(str(tmp_path), {"device": "cpu", "compute_type": "int8",
                                     "local_files_only": True}),
                    (1600, "float32", {"language": None, "beam_size": 1})]
    assert engine.partial(b"") == ""


# The listener, on a recording client with a fake recogniser -------------------------------
class FakeRecognizer:
    name, lang = "fake", "en"

    def __init__(self) -> None:
        self.heard: list[int] = []

    def recognize(self, pcm: bytes) -> Heard | None:
        self.heard.append(len(pcm))
        return Heard("please wave", 0.7)

    def partial(self, pcm: bytes) -> str:
        return ""


def test_a_live_source_is_muted_frame_by_frame_while_the_robot_speaks() -> None:
    client, engine = FakeClient(), FakeRecognizer()
    listener = Listener(client, engine, Spool.__new__(Spool), {"TARS_STT_MUTE_TAIL": "0"})
    line = user_line("please wave").data
    status = client.handlers["tts/status"]
    listener._take(Piece("begin", "mic"))  # the robot is quiet when the stream opens
    status(message("tts/status", {"event": "speaking_start", "utt_id": "r1"}))
    listener._take(Piece("audio", "mic", line))
    assert engine.heard == [] and listener.tally["muted_frames"] == len(line) // 960
    status(message("tts/status", {"event": "speaking_end", "utt_id": "r1"}))
    listener._take(Piece("audio", "mic", line + bytes(32000)))
    assert len(engine.heard) == 1
    final = client.wait_for(lambda p: p.topic == "stt/final")
    assert final.data == {"text": "please wave", "lang": "en", "confidence": 0.7}
    status(message("tts/status", {"event": "shouting"}))
    assert listener.tally["malformed"] == 1
    listener.close()


def test_an_engine_that_raises_loses_one_utterance_not_the_listener() -> None:
    class Broken(FakeRecognizer):
        def recognize(self, pcm: bytes) -> Heard | None:
            raise RuntimeError("lattice exploded")

    client = FakeClient()
    listener = Listener(client, Broken(), Spool.__new__(Spool), {})
    listener._take(Piece("begin", "x.wav", recording=True))
    listener._take(Piece("audio", "x.wav", user_line("stop").data, recording=True))
    listener._take(Piece("end", "x.wav", recording=True))
    assert listener.tally["engine_failed"] == 1 and client.on("stt/final") == []
    listener.close()


def test_an_engine_that_never_returns_makes_the_listener_report_itself_wedged() -> None:
    """The listening thread stays alive inside a recognition that hangs: only the time
    that recognition has taken tells the watchdog that nothing will be heard any more."""
    entered, release = threading.Event(), threading.Event()

    class Hanging(FakeRecognizer):
        def recognize(self, pcm: bytes) -> Heard | None:
            entered.set()
            release.wait(10)
            return super().recognize(pcm)

    client = FakeClient()
    listener = Listener(client, Hanging(), Spool.__new__(Spool), {})
    now = [0.0]
    listener._recognising = StepTimer(STUCK_AFTER, clock=lambda: now[0])
    listener.alive = lambda: True  # type: ignore[method-assign]  # fed by hand, not its thread
    assert listener.liveness() is None
    def utterance() -> None:
        for kind, data in (("begin", b""), ("audio", user_line("stop").data), ("end", b"")):
            listener._take(Piece(kind, "x.wav", data, recording=True))

    hear = threading.Thread(target=utterance)
    hear.start()
    try:
        assert entered.wait(10) and listener.liveness() is None
        now[0] += STUCK_AFTER + 1
        assert listener.liveness() == "one recognition has taken 121 s"
    finally:
        release.set()
        hear.join(10)
    assert listener.liveness() is None and client.on("stt/final")
    listener.close()


def test_a_step_timer_says_only_how_late_the_current_step_is() -> None:
    now = [10.0]
    timer = StepTimer(5.0, clock=lambda: now[0])
    assert timer.late() is None
    with timer.step():
        now[0] += 5.0
        assert timer.late() is None
        now[0] += 1.0
        assert timer.late() == 6.0
    assert timer.late() is None
