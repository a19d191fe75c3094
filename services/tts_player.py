"""The speaker's thread: takes utterances from the :class:`SpeechQueue`, renders them a
sentence ahead and plays them chunk by chunk, looking at pause, stop and mute between chunks.

The MQTT handlers only call :meth:`Player.say` and :meth:`Player.control`, which change the
queue under one lock and return at once; a stop is heard within one chunk (20 ms).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .audio import Pcm
from .audio_out import Sink
from .common import StepTimer, Tally
from .tts_engines import Engine, SpeechError
from .tts_queue import SpeechQueue, Status, Utterance
from .tts_text import split_sentences

__all__ = ["CHUNK_SECONDS", "STUCK_AFTER", "Player"]

log = logging.getLogger("tars.tts")
CHUNK_SECONDS = 0.02  # how often playback looks for a stop or a pause
STUCK_AFTER = 60.0  # seconds one sentence's rendering or one chunk may take: wedged beyond


class Player:
    """One thread that speaks; ``announce`` publishes status events (called under the lock,
    so they go out in the order they happened)."""

    def __init__(self, engine: Engine, sink: Sink, announce: Callable[[list[Status]], None],
                 *, limit: int = 20, tally: Tally | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.sink, self.announce = engine, sink, announce
        self._timer = StepTimer(STUCK_AFTER, clock)  # a render or a chunk written
        self.queue = SpeechQueue(limit)
        self.tally = tally or Tally()
        self._cond = threading.Condition()
        self._closing = False
        self._render = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tars-tts-render")
        self._thread = threading.Thread(target=self._run, name="tars-tts-player", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def say(self, utt: Utterance) -> None:
        """Queue ``utt`` (:class:`~services.tts_queue.QueueFull` when too many wait)."""
        with self._cond:
            self.queue.say(utt)
            self._cond.notify_all()

    def control(self, action: str) -> None:
        with self._cond:
            self.announce(self.queue.control(action))
            self._cond.notify_all()

    def halt(self, timeout: float = 2.0) -> None:
        """Stop speaking and wait until the sound has ended (``speaking_end`` announced)."""
        with self._cond:
            self.announce(self.queue.control("stop"))
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.queue.current is None, timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def liveness(self) -> str | None:
        """Why the player is dead, or wedged in an engine or a sound card that hangs."""
        if not self._thread.is_alive():
            return None if self._closing else "the player thread has died"
        late = self._timer.late()
        return None if late is None else f"the player has waited {late:.0f} s on one sentence"

    def close(self, timeout: float = 5.0) -> None:
        """Stop speaking (announcing it), end the thread. Idempotent."""
        with self._cond:
            if not self._closing:
                self.announce(self.queue.control("stop"))
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._render.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (utt := self.queue.next()) is None:
                    self._cond.wait()
                if self._closing:
                    return
            assert utt is not None
            sentences = split_sentences(utt.text)
            first = self._result(utt, self._submit(utt, sentences[0])) if sentences else None
            with self._cond:  # the first sentence is ready: the sound starts now
                begun = self.queue.begin(utt)
                if begun is None:
                    continue  # a stop dropped it while it was rendered
                generation = self.queue.generation
                self.announce(begun[1])
            try:
                self._play(utt, generation, first, sentences[1:])
            except Exception:  # a sink or engine fault must not end the speaker
                log.exception("playing %r failed", utt.utt_id)
                self.tally.add("failed")
                self.sink.close(cut=True)
            with self._cond:
                self.announce(self.queue.end(utt))
                self._cond.notify_all()

    def _play(self, utt: Utterance, generation: int, first: Pcm | None,
              rest: list[str]) -> None:
        opened = False
        pending = self._submit(utt, rest[0]) if rest else None
        for n in range(len(rest) + 1):
            pcm = first
            if n > 0:
                assert pending is not None
                pcm = self._result(utt, pending)
                pending = self._submit(utt, rest[n]) if n < len(rest) else None
            if pcm is None:
                continue
            if not opened:
                self.sink.open(pcm.rate, utt.utt_id)
                opened = True
            for chunk in pcm.chunks(CHUNK_SECONDS):
                with self._cond:
                    while self.queue.state == "paused" and self._current(generation):
                        self._cond.wait()
                    if not self._current(generation):
                        self.sink.close(cut=True)
                        return
                    muted = self.queue.muted
                with self._timer.step():
                    self.sink.write(bytes(len(chunk)) if muted else chunk)
        self.sink.close()

    def _current(self, generation: int) -> bool:
        return not self._closing and self.queue.generation == generation

    def _submit(self, utt: Utterance, text: str) -> Future[Pcm]:
        return self._render.submit(self.engine.render, text, utt.voice, utt.rate)

    def _result(self, utt: Utterance, pending: Future[Pcm]) -> Pcm | None:
        try:
            with self._timer.step():
                return pending.result()
        except SpeechError as exc:
            n = self.tally.add("render_failed")
            log.warning("sentence #%d of %r not rendered: %s", n, utt.utt_id, exc)
        except Exception:  # an engine is foreign code: one sentence lost, never the thread
            n = self.tally.add("render_failed")
            log.exception("sentence #%d of %r not rendered", n, utt.utt_id)
        return None
