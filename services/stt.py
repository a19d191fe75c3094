"""tars-stt: hears the room, publishes ``stt/partial`` while someone speaks and ``stt/final``.

One listening thread reads the source (:mod:`services.audio_in`), classifies 30 ms frames
(:class:`~services.stt_engines.VoiceActivity`), cuts utterances
(:class:`~services.stt_endpoint.Endpointer`) and recognises them
(:mod:`services.stt_engines`). While ``tts/status`` says the robot speaks, and a tail
after, what it hears is dropped (:class:`~services.stt_endpoint.MuteGate`). Bad audio
(wrong format, empty, only noise) is logged and counted, and nothing is published.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from tars_mqtt import Message, MQTTClient

from .audio_in import Piece, Source, source_from_env
from .common import StepTimer, Tally, env_float, env_int, problems, publish
from .runtime import Service, run
from .stt_endpoint import Endpointer, EndpointSettings, MuteGate
from .stt_engines import RATE, Recognizer, VoiceActivity, recognizer_from_env
from .topics import STT_FINAL, STT_PARTIAL, TTS_STATUS

__all__ = ["Listener", "main", "setup"]

log = logging.getLogger("tars.stt")
STUCK_AFTER = 120.0  # seconds one recognition may take before the listener counts as wedged


class Listener:
    """The listening thread and the ``tts/status`` handler that mutes it."""

    def __init__(self, client: MQTTClient, recognizer: Recognizer, source: Source,
                 environ: Mapping[str, str]) -> None:
        self.client, self.recognizer, self.source = client, recognizer, source
        self.vad = VoiceActivity(env_int(environ, "TARS_STT_VAD", 2, high=3))
        self.endpoints = EndpointSettings(
            frame=self.vad.frame_seconds,
            end=env_float(environ, "TARS_STT_END_SILENCE", 0.6, low=0.1, high=5),
            longest=env_float(environ, "TARS_STT_LONGEST", 15.0, low=1, high=120))
        self.gate = MuteGate(env_float(environ, "TARS_STT_MUTE_TAIL", 0.3, high=10))
        self.partial_every = env_float(environ, "TARS_STT_PARTIAL_INTERVAL", 1.0, low=0.1)
        self.tally = Tally()
        self._ep, self._buffer, self._said, self._muted_file = Endpointer(), b"", 0, False
        self._utterance = 0  # counts finals: a partial of an older utterance is not sent
        self._partials = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tars-stt-partial")
        self._partial: Future[None] | None = None
        self._lock = threading.Lock()  # the gate: the handler writes, the thread reads
        self._recognising = StepTimer(STUCK_AFTER)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="tars-stt-listen", daemon=True)
        client.subscribe(TTS_STATUS.name, self.on_status, qos=TTS_STATUS.qos)

    def on_status(self, msg: Message) -> None:
        found = problems(msg, TTS_STATUS)
        if found:
            n = self.tally.add("malformed")
            log.warning("tts/status #%d ignored: %s", n, "; ".join(found))
            return
        with self._lock:
            self.gate.status(msg.data["event"], time.monotonic())
            muted = self.gate.muted(time.monotonic())
        log.info("%s while the robot speaks (%s)", "muted" if muted else "listening",
                 msg.data["event"])

    def muted(self) -> bool:
        with self._lock:
            return self.gate.muted(time.monotonic())

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive() or self._stop.is_set()

    def liveness(self) -> str | None:
        """Why the listening thread is dead, or wedged in an engine that never returns."""
        if not self.alive():
            return "the listening thread has died"
        late = self._recognising.late()
        return None if late is None else f"one recognition has taken {late:.0f} s"

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._partials.shutdown(wait=True, cancel_futures=True)

    def _listen(self) -> None:
        try:
            for piece in self.source.pieces(self._stop):
                self._take(piece)
            self._stop.wait()  # a file read once has ended: idle until the service stops
        except Exception:  # the source failed (a device went away): say so, the watchdog acts
            log.exception("the audio source failed")
            raise

    def _take(self, piece: Piece) -> None:
        if piece.kind == "bad":
            n = self.tally.add("bad_audio")
            log.warning("bad audio #%d (%s): %s", n, piece.name, piece.data.decode())
        elif piece.kind == "begin":
            self._ep, self._buffer, self._said = Endpointer(self.endpoints), b"", 0
            self._muted_file = piece.recording and self.muted()  # a live source: per frame
            if self._muted_file:
                n = self.tally.add("muted")
                log.info("heard while the robot speaks, dropped #%d: %s", n, piece.name)
        elif piece.kind == "audio" and not self._muted_file:
            self._audio(piece.data)
        elif piece.kind == "end" and not self._muted_file:
            audio = self._ep.flush()
            if audio is not None:
                self._final(audio)
            elif self._said == 0:
                n = self.tally.add("no_speech")
                log.warning("no speech in %s (#%d): silence or noise", piece.name, n)

    def _audio(self, data: bytes) -> None:
        self._buffer += data
        size = self.vad.frame_bytes
        while len(self._buffer) >= size:
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            if self.muted():  # the robot speaks: this frame is not heard
                self._ep.flush()
                self.tally.add("muted_frames")
                continue
            seg = self._ep.feed(frame, self.vad.voiced(frame))
            if seg.ended is not None:
                self._final(seg.ended)
            elif seg.speaking and len(self._ep.heard) >= (self._said + 1) * \
                    self.partial_every * RATE * 2:
                self._said += 1
                if self._partial is None or self._partial.done():  # one at a time
                    self._partial = self._partials.submit(self._guess, self._utterance,
                                                          self._ep.heard)

    def _guess(self, utterance: int, audio: bytes) -> None:
        """A partial, on its own thread: the listening thread must keep up with the audio."""
        try:
            text = self.recognizer.partial(audio)
        except Exception:
            log.exception("a partial recognition failed")
            return
        if text and utterance == self._utterance:  # not once the final is out
            publish(self.client, STT_PARTIAL, {"text": text})

    def _final(self, audio: bytes) -> None:
        self._said += 1
        self._utterance += 1
        try:
            with self._recognising.step():
                heard = self.recognizer.recognize(audio)
        except Exception:  # the engine is foreign code: one utterance lost, not the service
            n = self.tally.add("engine_failed")
            log.exception("recognition #%d failed", n)
            return
        if heard is None or not heard.text.strip():
            n = self.tally.add("unrecognised")
            log.warning("nothing recognised in %.1f s of audio (#%d)", len(audio) / RATE / 2, n)
            return
        log.info("heard %r (score %.3f)", heard.text, heard.score)
        publish(self.client, STT_FINAL, {"text": heard.text, "lang": self.recognizer.lang,
                                         "confidence": round(min(1.0, heard.score), 3)})


def setup(client: MQTTClient, environ: Mapping[str, str] = os.environ) -> Service:
    """TARS_STT_* settings (docs/services.md): the engine and the source are checked here."""
    listener = Listener(client, recognizer_from_env(environ), source_from_env(RATE, environ),
                        environ)
    log.info("listening with %s", listener.recognizer.name)
    listener.start()

    def close() -> None:
        listener.close()
        log.info("stt stopped; counts %s", listener.tally.as_dict())

    return Service(close=close, liveness=listener.liveness)


def main() -> int:
    """``tars-stt``: MQTT_* for the client, TARS_STT_* for the engine and the source."""
    return run("stt", setup)


if __name__ == "__main__":
    raise SystemExit(main())
