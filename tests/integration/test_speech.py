"""tars-tts and tars-stt as real processes with their real engines, against a real mosquitto.

espeak-ng speaks the user's lines into tars-stt's spool directory; tars-tts writes what
it says to a WAV directory in real time, so a stop or a pause mid-utterance is real.
Every wait is on a message (or a log line) with a timeout.
"""

from __future__ import annotations

import random
import re
import time
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from services.audio import Pcm, encode_wav
from services.audio_render import hand_in, user_line
from tests.integration.support import TIMEOUT
from tests.integration.test_services import Recorder, Service, rec, start, stop_cleanly
from tests.tars_mqtt.support import wait_until

__all__ = ["rec", "start"]  # the fixtures, shared with the other services' tests

LONG = ("This is a long answer that the robot reads out slowly, sentence by sentence. "
        "It goes on for a while, so that there is time to pause it. "
        "And then it goes on again, until someone stops it for good.")


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def wait_log(svc: Service, pattern: str, timeout: float = 10.0) -> None:
    """Until ``svc``'s log has a line matching ``pattern`` (polled: a log is a file)."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, svc.log()):
        assert time.monotonic() < deadline, f"no {pattern!r} in the log:\n{svc.log()}"
        time.sleep(0.05)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    spool, said = tmp_path / "heard", tmp_path / "said"
    spool.mkdir()
    said.mkdir()
    return spool, said


@pytest.mark.timeout(60)
def test_tts_says_in_order_and_obeys_pause_resume_stop(
        start: Callable[..., Service], rec: Recorder, dirs: tuple[Path, Path]) -> None:
    _, said = dirs
    tts = start("tts", TARS_TTS_OUTPUT=f"wav:{said}")
    c = rec.client
    c.publish_event("tts/say", "tts.say", {"text": "Okay, waving.", "utt_id": "u1"}).wait(5)
    c.publish_event("tts/say", "tts.say", {"text": "Hello there.", "utt_id": "u2",
                                           "voice": "en-gb", "rate": 220}).wait(5)
    rec.wait("tts/status", event="speaking_end", utt_id="u2")
    events = [(d["event"], d["utt_id"]) for d in rec.on("tts/status")]
    assert events == [("speaking_start", "u1"), ("speaking_end", "u1"),
                      ("speaking_start", "u2"), ("speaking_end", "u2")]
    first, second = sorted(said.glob("*.wav"))
    assert first.name.endswith("-u1.wav") and 0.5 < wav_seconds(first) < 3.0

    mark = rec.mark()  # a long text: paused, resumed, then stopped half-way
    c.publish_event("tts/say", "tts.say", {"text": LONG, "utt_id": "long"}).wait(5)
    rec.wait("tts/status", after=mark, event="speaking_start", utt_id="long")
    c.publish_event("tts/control", "tts.control", {"action": "pause"}).wait(5)
    rec.wait("tts/status", after=mark, event="paused", utt_id="long")
    c.publish_event("tts/control", "tts.control", {"action": "resume"}).wait(5)
    rec.wait("tts/status", after=mark, event="resumed", utt_id="long")
    c.publish_event("tts/say", "tts.say", {"text": "Never said.", "utt_id": "queued"}).wait(5)
    # say and control are two subscriptions, handled in parallel: the stop must come after
    # the say was taken, or it has nothing queued to drop
    assert wait_until(lambda: "tts/say queued: queued" in tts.log(), TIMEOUT)
    c.publish_event("tts/control", "tts.control", {"action": "stop"}).wait(5)
    rec.wait("tts/status", after=mark, event="speaking_end", utt_id="long")
    events = [(d["event"], d["utt_id"]) for d in rec.on("tts/status", after=mark)]
    assert events == [("speaking_start", "long"), ("paused", "long"), ("resumed", "long"),
                      ("stopped", "queued"), ("stopped", "long"), ("speaking_end", "long")]
    cut = sorted(said.glob("*-long.wav"))[0]
    assert wav_seconds(cut) < 8.0  # the whole text takes ~12 s: the stop cut it

    mark = rec.mark()  # hostile input: refused, counted, the service carries on
    c.publish("tts/say", b"\x00garbage", qos=1).wait(5)
    for bad in ({"text": 5}, {"text": "hi", "voice": "-x /etc/passwd"}, {"text": " "},
                {"text": "hi", "rate": 10000}):
        c.publish_event("tts/say", "tts.say", bad).wait(5)
    c.publish_event("tts/control", "tts.control", {"action": "explode"}).wait(5)
    c.publish_event("tts/say", "tts.say", {"text": "Still here.", "utt_id": "ok"}).wait(5)
    rec.wait("tts/status", after=mark, event="speaking_end", utt_id="ok")
    assert [d["utt_id"] for d in rec.on("tts/status", after=mark)] == ["ok", "ok"]
    stop_cleanly(tts, rec)
    log = tts.log()
    assert "tts/say #5 refused" in log and "is not a voice name" in log
    assert "tts/control #1 ignored" in log


@pytest.mark.timeout(60)
def test_a_text_holding_a_nul_is_said_and_the_speaker_speaks_on(
        start: Callable[..., Service], rec: Recorder, dirs: tuple[Path, Path]) -> None:
    """A NUL is valid JSON text but no command-line argument: espeak-ng's ValueError once
    ended the player thread, and tars-tts said nothing more until it was restarted."""
    _, said = dirs
    tts = start("tts", TARS_TTS_OUTPUT=f"wav:{said}")
    c = rec.client
    c.publish_event("tts/say", "tts.say", {"text": "One\u0000two.\x07", "utt_id": "nul"}).wait(5)
    c.publish_event("tts/say", "tts.say", {"text": "Still here.", "utt_id": "next"}).wait(5)
    rec.wait("tts/status", event="speaking_end", utt_id="next")
    assert [(d["event"], d["utt_id"]) for d in rec.on("tts/status")] == [
        ("speaking_start", "nul"), ("speaking_end", "nul"),
        ("speaking_start", "next"), ("speaking_end", "next")]
    assert wav_seconds(sorted(said.glob("*-nul.wav"))[0]) > 0.3  # "One two." was said
    stop_cleanly(tts, rec)
    assert "Traceback" not in tts.log()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_please_wave_spoken_is_heard_and_the_robot_waves(
        start: Callable[..., Service], rec: Recorder, dirs: tuple[Path, Path]) -> None:
    spool, said = dirs
    start("movement")
    start("router", TARS_ROUTER_LLM_TIMEOUT="1.0")
    stt = start("stt", TARS_STT_INPUT=f"dir:{spool}", TARS_STT_MUTE_TAIL="0")
    start("tts", TARS_TTS_OUTPUT=f"wav:{said}")

    hand_in(spool, user_line("please wave"))
    final = rec.wait("stt/final", timeout=20)
    assert final.data["text"] == "please wave" and final.data["lang"] == "en"
    assert 0 < final.data["confidence"] <= 1
    rec.wait("movement/command", action="wave")
    rec.wait("movement/status", event="completed", action="wave", timeout=20)
    said_it = rec.wait("tts/say", text="Okay, waving.")
    rec.wait("tts/status", event="speaking_end", utt_id=said_it.data["utt_id"])
    assert len(list(said.glob("*.wav"))) == 1

    # While the robot speaks, tars-stt hears nothing; afterwards it hears again.
    mark = rec.mark()
    rec.client.publish_event("tts/say", "tts.say", {"text": LONG, "utt_id": "long"}).wait(5)
    rec.wait("tts/status", after=mark, event="speaking_start", utt_id="long")
    wait_log(stt, r"muted while the robot speaks \(speaking_start\)")
    hand_in(spool, user_line("turn left"))
    wait_log(stt, r"heard while the robot speaks, dropped #1")
    rec.client.publish_event("tts/control", "tts.control", {"action": "stop"}).wait(5)
    rec.wait("tts/status", after=mark, event="speaking_end", utt_id="long")
    wait_log(stt, r"listening while the robot speaks \(speaking_end\)")  # no tail here
    hand_in(spool, user_line("stop"))
    assert rec.wait("stt/final", after=mark, timeout=20).data["text"] == "stop"
    assert [d["text"] for d in rec.on("stt/final", after=mark)] == ["stop"]


@pytest.mark.timeout(60)
def test_bad_audio_is_counted_and_nothing_is_published(
        start: Callable[..., Service], rec: Recorder, dirs: tuple[Path, Path]) -> None:
    spool, _ = dirs
    stt = start("stt", TARS_STT_INPUT=f"dir:{spool}")
    (spool / "0000-notwav.wav").write_bytes(b"RIFF nonsense")  # "0000-": heard first
    hand_in(spool, Pcm(user_line("please wave").data, 22050), "wrongrate")
    hand_in(spool, Pcm(b"", 16000), "empty")
    hand_in(spool, Pcm(bytes(32000), 16000), "silence")
    hiss = random.Random(1)
    noise = b"".join(int(hiss.gauss(0, 3000)).to_bytes(2, "little", signed=True)
                     for _ in range(32000))
    hand_in(spool, Pcm(noise, 16000), "noise")
    (spool / "0000-stereo.wav").write_bytes(encode_wav(Pcm(bytes(64), 16000)).replace(
        b"\x01\x00\x80>", b"\x02\x00\x80>", 1))
    hand_in(spool, user_line("turn right"), "after")
    assert rec.wait("stt/final", timeout=20).data["text"] == "turn right"
    assert [d["text"] for d in rec.on("stt/final")] == ["turn right"]
    stop_cleanly(stt, rec)
    log = stt.log()
    assert "not a WAV file" in log
    assert "wrong rate: 22050 Hz (want 16000 Hz)" in log
    assert "empty: no samples" in log
    assert "no speech in" in log
