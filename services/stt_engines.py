"""Speech-to-text engines behind one small interface: an utterance's samples in, words out.

:class:`Pocketsphinx` (the ``stt`` extra; its wheel ships a US English model) decodes each
utterance twice, with the command grammar (:mod:`services.stt_grammar`) and with free
dictation, and :func:`~services.stt_grammar.choose` picks. :class:`Whisper` runs a
faster-whisper model from a local directory (the ``whisper`` extra; nothing is ever
downloaded). :class:`VoiceActivity` classifies frames for the endpointer.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from tars_mqtt import ConfigError

from .common import env_float
from .stt_grammar import FLOOR, MODES, Heard, build_grammar, choose

__all__ = ["RATE", "Pocketsphinx", "Recognizer", "VoiceActivity", "Whisper",
           "recognizer_from_env"]

log = logging.getLogger("tars.stt")
RATE = 16000  # both engines' models are trained on 16 kHz audio
# Synthetic or gated audio has stretches of exact zeros, which the recogniser's feature
# normalisation never sees from a microphone: with no dither, half the command set
# spoken by espeak-ng lost its last word; a noise floor of 16 LSB (-66 dBFS) fixed it.
DITHER = 16.0
NBEST = 30  # grammar hypotheses looked through for a whole sentence


class Recognizer(Protocol):
    """Words for one utterance of 16 kHz mono 16-bit samples (None: nothing usable)."""

    name: str
    lang: str

    def recognize(self, pcm: bytes) -> Heard | None: ...
    def partial(self, pcm: bytes) -> str: ...


def _import(name: str, extra: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"{name} is not installed (pip install 'tars-mqtt[{extra}]')") from None


class VoiceActivity:
    """WebRTC-style voice activity on ``frame_bytes`` frames (pocketsphinx's ``Vad``)."""

    def __init__(self, aggressiveness: int = 2, rate: int = RATE) -> None:
        ps = _import("pocketsphinx", "stt")
        self._vad = ps.Vad(mode=aggressiveness, sample_rate=rate, frame_length=0.03)
        self.frame_bytes: int = self._vad.frame_bytes
        self.frame_seconds: float = self._vad.frame_length

    def voiced(self, frame: bytes) -> bool:
        return bool(self._vad.is_speech(frame))


class Pocketsphinx:
    """The command grammar and free dictation on one decoder, one search after the other."""

    name = "pocketsphinx"
    lang = "en"

    def __init__(self, *, mode: str = "both", floor: float = FLOOR, margin: float = 1.0,
                 loader: Callable[[], Any] | None = None) -> None:
        ps = (loader or (lambda: _import("pocketsphinx", "stt")))()
        self._np = _import("numpy", "stt")
        self.mode, self.floor, self.margin = mode, floor, margin
        self._ps = ps
        self._decoder = ps.Decoder(loglevel="FATAL")
        self._dictation = self._decoder.current_search()
        self._partials: Any = None  # a decoder of its own: partials run beside finals
        self._partial_lock = threading.Lock()
        grammar = build_grammar(self._decoder.lookup_word)
        for word, phones in grammar.extra_words.items():
            self._decoder.add_word(word, phones, True)
        if grammar.missing:
            log.warning("left out of the grammar (words not in the dictionary): %s",
                        ", ".join(grammar.missing))
        self._decoder.add_jsgf_string("commands", grammar.jsgf)
        self.grammar = grammar

    def _decode(self, pcm: bytes, search: str, decoder: Any = None) -> Heard | None:
        decoder = decoder or self._decoder
        decoder.activate_search(search)
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is None:
            return None
        text = " ".join(w for w in hyp.hypstr.split() if not w.startswith("<"))
        return Heard(text, float(hyp.score))

    def _command(self, pcm: bytes) -> Heard | None:
        """The grammar's best *whole* sentence. Its single best path is often one cut short
        ("please go" for "please bow": espeak-ng's /bo/ is nearer "go"); the whole
        sentence is a few places down the n-best list: 89 % → 93 % of the bench's commands."""
        best = self._decode(pcm, "commands")
        if best is None or self.grammar.complete(best.text):
            return best
        for hyp in itertools.islice(self._decoder.nbest(), NBEST):
            if hyp is None:  # the lattice can yield an empty entry
                continue
            text = " ".join(w for w in hyp.hypstr.split() if not w.startswith("<"))
            if self.grammar.complete(text):
                return Heard(text, float(hyp.score))
        return best

    def _dithered(self, pcm: bytes) -> bytes:
        """``pcm`` with the noise floor added; the same noise every time (a fixed seed), so
        the same audio is always heard the same way, whatever was heard before."""
        np = self._np
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        x += np.random.default_rng(0).normal(0.0, DITHER, len(x))
        return bytes(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())

    def recognize(self, pcm: bytes) -> Heard | None:
        audio = self._dithered(pcm)
        command = self._command(audio) if self.mode != "dictation" else None
        dictation = self._decode(audio, self._dictation) if self.mode != "commands" or \
            command is None else None
        return choose(command, dictation, mode=self.mode, floor=self.floor, margin=self.margin)

    def partial(self, pcm: bytes) -> str:
        """Dictation of the utterance so far (thread-safe beside :meth:`recognize`)."""
        with self._partial_lock:
            if self._partials is None:
                self._partials = self._ps.Decoder(loglevel="FATAL")
            heard = self._decode(self._dithered(pcm), self._partials.current_search(),
                                 self._partials)
        return heard.text if heard else ""


class Whisper:
    """faster-whisper on the CPU from a local model directory (``TARS_STT_WHISPER_MODEL``)."""

    name = "whisper"

    def __init__(self, model: Path, *, language: str | None = None,
                 loader: Callable[[], Any] | None = None) -> None:
        if not model.is_dir():
            raise ConfigError(f"TARS_STT_WHISPER_MODEL={str(model)!r} is not a directory")
        fw = (loader or (lambda: _import("faster_whisper", "whisper")))()
        self._np = _import("numpy", "whisper")
        self._model = fw.WhisperModel(str(model), device="cpu", compute_type="int8",
                                      local_files_only=True)
        self.language, self.lang = language, language or "en"

    def recognize(self, pcm: bytes) -> Heard | None:
        audio = self._np.frombuffer(pcm, dtype="<i2").astype(self._np.float32) / 32768.0
        segments, info = self._model.transcribe(audio, language=self.language, beam_size=1)
        parts = list(segments)
        text = " ".join(s.text.strip() for s in parts).strip()
        if not text:
            return None
        self.lang = getattr(info, "language", None) or self.lang
        mean = sum(s.avg_logprob for s in parts) / len(parts)
        return Heard(text, math.exp(min(0.0, mean)))

    def partial(self, pcm: bytes) -> str:
        return ""  # too slow to run twice a second on a Pi


def recognizer_from_env(environ: Mapping[str, str] = os.environ) -> Recognizer:
    """``TARS_STT_WHISPER_MODEL`` set: faster-whisper; else pocketsphinx in
    ``TARS_STT_MODE`` (both, commands, dictation) with ``TARS_STT_COMMAND_SCORE`` and
    ``TARS_STT_COMMAND_MARGIN``."""
    model = environ.get("TARS_STT_WHISPER_MODEL", "").strip()
    if model:
        lang = environ.get("TARS_STT_LANG", "").strip() or None
        return Whisper(Path(model), language=lang)
    mode = environ.get("TARS_STT_MODE", "").strip() or "both"
    if mode not in MODES:
        raise ConfigError(f"TARS_STT_MODE={mode!r}: one of {', '.join(MODES)}")
    floor = env_float(environ, "TARS_STT_COMMAND_SCORE", FLOOR, high=1)
    margin = env_float(environ, "TARS_STT_COMMAND_MARGIN", 1.0, low=0.1, high=10)
    return Pocketsphinx(mode=mode, floor=floor, margin=margin)
