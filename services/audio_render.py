"""A stand-in for a person talking to the robot: espeak-ng says a line, as a microphone
at 16 kHz would record it, into tars-stt's spool directory.

Used by the demo, the tests and the benchmarks (numpy for the resampling: the ``stt`` or
``dev`` extra). Lines go through :func:`hand_in`, which writes under a hidden name and
renames, so tars-stt never reads half a file.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from .audio import Pcm, encode_wav, resample, silence
from .tts_engines import Espeak

__all__ = ["hand_in", "user_line"]

PAUSE = 0.3  # seconds of quiet before and after the line, as between a person's sentences
_names = itertools.count(1)


def user_line(text: str, *, voice: str = "en-us", wpm: float = 175, rate: int = 16000,
              engine: Espeak | None = None) -> Pcm:
    """``text`` spoken by espeak-ng ``voice`` at ``wpm`` words per minute, at ``rate`` Hz."""
    spoken = resample((engine or Espeak()).render(text, voice, wpm), rate)
    gap = silence(rate, PAUSE)
    return Pcm(gap + spoken.data + gap, rate)


def hand_in(spool: Path, pcm: Pcm, name: str = "line") -> Path:
    """Put ``pcm`` into the spool directory as a complete WAV file; its path."""
    final = spool / f"{os.getpid()}-{next(_names):05d}-{name}.wav"
    hidden = spool / f".{final.name}"
    hidden.write_bytes(encode_wav(pcm))
    hidden.rename(final)
    return final
