"""Text-to-speech engines behind one small interface: text in, :class:`~services.audio.Pcm` out.

:class:`Espeak` runs the ``espeak-ng`` command (Debian's package; the default);
:class:`Piper` runs a piper voice model file that is already on the robot (the
``piper-tts`` package; nothing is ever downloaded). :func:`engine_from_env` picks one:
``TARS_TTS_PIPER_MODEL`` set means piper, else espeak-ng with ``TARS_TTS_VOICE``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from tars_mqtt import ConfigError

from .audio import BadAudio, Pcm, decode_wav
from .common import env_float

__all__ = ["DEFAULT_RATE", "Engine", "Espeak", "Piper", "SpeechError", "engine_from_env"]

DEFAULT_RATE = 175.0  # words per minute, espeak-ng's own default


class SpeechError(RuntimeError):
    """The engine could not render a text (the message says why)."""


class Engine(Protocol):
    """Renders one sentence; ``voice`` and ``rate`` (words per minute) are hints."""

    name: str

    def render(self, text: str, voice: str | None = None, rate: float | None = None) -> Pcm:
        ...


class Espeak:
    """``espeak-ng --stdout``: a WAV on its standard output, read whole (one sentence)."""

    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", rate: float = DEFAULT_RATE, *,
                 command: str = "espeak-ng", timeout: float = 20.0) -> None:
        path = shutil.which(command)
        if path is None:
            raise ConfigError(f"{command!r} is not installed (TARS_TTS_ESPEAK): install the"
                              " espeak-ng package, or set TARS_TTS_PIPER_MODEL")
        self.command, self.voice, self.rate, self.timeout = path, voice, rate, timeout

    def render(self, text: str, voice: str | None = None, rate: float | None = None) -> Pcm:
        wpm = int(min(450, max(80, rate or self.rate)))
        # "--" ends the options: a text starting with "-" is text, not a flag.
        argv = [self.command, "-v", voice or self.voice, "-s", str(wpm), "--stdout", "--", text]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SpeechError(f"espeak-ng took over {self.timeout:g} s") from None
        except (OSError, ValueError) as exc:  # cannot run, or an argument it cannot take
            raise SpeechError(f"espeak-ng could not be run: {exc}") from None
        if done.returncode != 0:
            raise SpeechError(f"espeak-ng exited with {done.returncode}: "
                              f"{done.stderr.decode(errors='replace').strip()[:200]}")
        try:
            return decode_wav(done.stdout)
        except BadAudio as exc:
            raise SpeechError(f"espeak-ng gave unusable audio ({exc})") from None


class Piper:
    """A piper voice (``.onnx`` with its ``.onnx.json``) loaded once, rendering in-process.

    ``rate`` maps to piper's ``length_scale`` (175 words per minute = the voice's own pace).
    ``loader`` imports the ``piper`` module (tests pass a fake).
    """

    name = "piper"

    def __init__(self, model: Path, *, loader: Callable[[], Any] | None = None) -> None:
        if not model.is_file():
            raise ConfigError(f"TARS_TTS_PIPER_MODEL={str(model)!r} is not a file")
        try:
            piper = (loader or (lambda: importlib.import_module("piper")))()
        except ImportError:
            raise ConfigError("TARS_TTS_PIPER_MODEL is set but piper-tts is not installed"
                              " (pip install 'tars-mqtt[piper]')") from None
        self._piper = piper
        config = model.with_name(model.name + ".json")
        self._voice = piper.PiperVoice.load(str(model),
                                            config_path=str(config) if config.is_file() else None)

    def render(self, text: str, voice: str | None = None, rate: float | None = None) -> Pcm:
        options = {}
        if rate:
            options["syn_config"] = self._piper.SynthesisConfig(length_scale=DEFAULT_RATE / rate)
        data, sample_rate = bytearray(), 0
        try:
            for chunk in self._voice.synthesize(text, **options):
                if chunk.sample_channels != 1 or chunk.sample_width != 2:
                    raise SpeechError("piper gave audio that is not mono 16-bit")
                sample_rate = chunk.sample_rate
                data += chunk.audio_int16_bytes
        except SpeechError:
            raise
        except Exception as exc:  # the voice model is foreign code: name what it raised
            raise SpeechError(f"piper failed: {exc!r}") from exc
        return Pcm(bytes(data), sample_rate or 22050)


def engine_from_env(environ: Mapping[str, str] = os.environ) -> Engine:
    """The engine the environment asks for (:class:`ConfigError` naming a bad setting)."""
    rate = env_float(environ, "TARS_TTS_RATE", DEFAULT_RATE, low=80, high=450)
    model = environ.get("TARS_TTS_PIPER_MODEL", "").strip()
    if model:
        return Piper(Path(model))
    return Espeak(environ.get("TARS_TTS_VOICE", "").strip() or "en-us", rate,
                  command=environ.get("TARS_TTS_ESPEAK", "").strip() or "espeak-ng")
