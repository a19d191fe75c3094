"""Where spoken audio goes: the sound card (``aplay`` or ``sounddevice``) or WAV files.

A :class:`Sink` takes one utterance at a time (``open``, ``write`` chunk after chunk,
``close``). Every sink plays in real time: ``write`` returns when the chunk's time has
passed, so a stop or a pause between two chunks is heard at once. :class:`WavDir` writes
each utterance to its own WAV file at that pace, for headless robots, tests and the
demo; a stop mid-utterance leaves a file cut where the stop came.
``TARS_TTS_OUTPUT`` chooses: ``aplay`` (default), ``sounddevice`` or ``wav:DIR``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import subprocess
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from tars_mqtt import ConfigError
from tars_mqtt.timing import Clock, MonotonicClock

from .audio import WIDTH

__all__ = ["Aplay", "Pacer", "Sink", "SoundDevice", "WavDir", "sink_from_env"]

LEAD = 0.05  # seconds a sound card is fed ahead of real time, so it never runs dry


class Sink(Protocol):
    """One utterance at a time; ``close(cut=True)`` drops what is still buffered."""

    def open(self, rate: int, name: str) -> None: ...
    def write(self, chunk: bytes) -> None: ...
    def close(self, cut: bool = False) -> None: ...


class Pacer:
    """Real-time pacing: :meth:`played` returns once the audio so far is due (minus a lead)."""

    def __init__(self, clock: Clock, lead: float = 0.0) -> None:
        self.clock, self.lead = clock, lead
        self._start, self._seconds = 0.0, 0.0

    def restart(self) -> None:
        self._start, self._seconds = self.clock.now(), 0.0

    def played(self, seconds: float) -> None:
        self._seconds += seconds
        late = self._start + self._seconds - self.lead - self.clock.now()
        if late > 0:
            self.clock.sleep(late)
        elif late < -0.1:  # held up (a pause, a slow render): play on from now
            self.restart()


class WavDir:
    """Each utterance as ``NNNN-<utt_id>.wav`` in ``directory``, written in real time."""

    def __init__(self, directory: Path, *, clock: Clock | None = None) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"TARS_TTS_OUTPUT: cannot use {str(directory)!r}: {exc}") from None
        self.directory = directory
        self._pacer = Pacer(clock or MonotonicClock())
        self._wav: wave.Wave_write | None = None
        self._rate = 0
        self._count = len(list(directory.glob("*.wav")))
        self.last: Path | None = None

    def open(self, rate: int, name: str) -> None:
        self.close()
        self._count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40] or "utt"
        self.last = self.directory / f"{self._count:04d}-{safe}.wav"
        self._wav = wave.open(str(self.last), "wb")  # noqa: SIM115 (open across writes)
        self._wav.setnchannels(1)
        self._wav.setsampwidth(WIDTH)
        self._wav.setframerate(rate)
        self._rate = rate
        self._pacer.restart()

    def write(self, chunk: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframes(chunk)
            self._pacer.played(len(chunk) / (WIDTH * self._rate))

    def close(self, cut: bool = False) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class Aplay:
    """ALSA's ``aplay`` reading raw samples on its standard input (``-D`` device optional)."""

    def __init__(self, device: str | None = None, *, clock: Clock | None = None) -> None:
        path = shutil.which("aplay")
        if path is None:
            raise ConfigError("TARS_TTS_OUTPUT=aplay but aplay is not installed (alsa-utils)")
        self._argv = [path, "-q", "-t", "raw", "-f", "S16_LE", "-c", "1"]
        self._argv += ["-D", device] if device else []
        self._pacer = Pacer(clock or MonotonicClock(), LEAD)
        self._proc: subprocess.Popen[bytes] | None = None
        self._rate = 0

    def open(self, rate: int, name: str) -> None:
        self.close()
        self._rate = rate
        self._proc = subprocess.Popen([*self._argv, "-r", str(rate)], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._pacer.restart()

    def write(self, chunk: bytes) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(chunk)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return  # aplay died (no device): the utterance goes on silently
        self._pacer.played(len(chunk) / (WIDTH * self._rate))

    def close(self, cut: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stdin: IO[bytes] | None = proc.stdin
        if cut:
            proc.kill()  # what aplay still buffers must not be heard
        if stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(2)


class SoundDevice:
    """PortAudio through ``sounddevice`` (the ``audio`` extra); its ``write`` blocks in time."""

    def __init__(self, device: str | None = None) -> None:
        try:
            self._sd: Any = importlib.import_module("sounddevice")
        except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
            raise ConfigError(f"TARS_TTS_OUTPUT=sounddevice: {exc}") from None
        self._device = device
        self._stream: Any = None

    def open(self, rate: int, name: str) -> None:
        self.close()
        self._stream = self._sd.RawOutputStream(samplerate=rate, channels=1, dtype="int16",
                                                device=self._device)
        self._stream.start()

    def write(self, chunk: bytes) -> None:
        if self._stream is not None:
            self._stream.write(chunk)

    def close(self, cut: bool = False) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            (stream.abort if cut else stream.stop)()
            stream.close()


def sink_from_env(environ: Mapping[str, str] = os.environ) -> Sink:
    """``TARS_TTS_OUTPUT``: ``aplay`` (default), ``sounddevice`` or ``wav:DIR``;
    ``TARS_TTS_DEVICE`` names the ALSA/PortAudio device (the system default otherwise)."""
    output = environ.get("TARS_TTS_OUTPUT", "").strip() or "aplay"
    device = environ.get("TARS_TTS_DEVICE", "").strip() or None
    if output == "aplay":
        return Aplay(device)
    if output == "sounddevice":
        return SoundDevice(device)
    if output.startswith("wav:") and output[4:].strip():
        return WavDir(Path(output[4:].strip()))
    raise ConfigError(f"TARS_TTS_OUTPUT={output!r}: use aplay, sounddevice or wav:DIR")
