"""PCM audio as the speech services pass it around: mono, 16-bit little-endian samples.

Pure helpers, no devices: :class:`Pcm` (samples and their rate), WAV bytes in and out,
the checks that turn a file someone dropped in into a clear :class:`BadAudio`, and a
resampler for the tools that render speech for the recogniser.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

__all__ = ["WIDTH", "BadAudio", "Pcm", "decode_wav", "encode_wav", "resample", "silence"]

WIDTH = 2  # bytes per sample: 16-bit signed little-endian, everywhere


class BadAudio(ValueError):
    """Audio the services cannot use: the message says what was wrong with it."""


@dataclass(frozen=True)
class Pcm:
    """Mono 16-bit samples at ``rate`` Hz."""

    data: bytes
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.data) / (WIDTH * self.rate) if self.rate else 0.0

    def chunks(self, seconds: float) -> list[bytes]:
        """The samples cut into pieces of ``seconds`` (the last may be shorter)."""
        size = max(WIDTH, int(self.rate * seconds) * WIDTH)
        return [self.data[i:i + size] for i in range(0, len(self.data), size)]


def silence(rate: int, seconds: float) -> bytes:
    return bytes(int(rate * seconds) * WIDTH)


def encode_wav(pcm: Pcm) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(WIDTH)
        wav.setframerate(pcm.rate)
        wav.writeframes(pcm.data)
    return out.getvalue()


def decode_wav(data: bytes, *, rate: int | None = None) -> Pcm:
    """The samples of a mono 16-bit WAV file (at ``rate`` Hz if given).

    Raises:
        BadAudio: not a WAV file, not mono 16-bit, another rate, or no samples at all.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, found = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadAudio(f"not a WAV file: {exc}") from None
    if channels != 1 or width != WIDTH:
        raise BadAudio(f"wrong format: {channels} channel(s) of {8 * width}-bit samples"
                       f" (want mono 16-bit)")
    if rate is not None and found != rate:
        raise BadAudio(f"wrong rate: {found} Hz (want {rate} Hz)")
    if len(frames) < WIDTH:
        raise BadAudio("empty: no samples")
    return Pcm(frames[:len(frames) - len(frames) % WIDTH], found)


def resample(pcm: Pcm, rate: int) -> Pcm:
    """``pcm`` at ``rate`` Hz: a windowed-sinc low-pass below the new Nyquist, then
    linear interpolation (plenty for speech fed to a recogniser)."""
    import numpy as np  # an optional dependency: only the tools that render speech need it

    if pcm.rate == rate or not pcm.data:
        return Pcm(pcm.data, rate)
    x = np.frombuffer(pcm.data, dtype="<i2").astype(np.float64)
    if rate < pcm.rate:
        cut = 0.95 * rate / 2 / pcm.rate
        n = np.arange(101) - 50
        taps = 2 * cut * np.sinc(2 * cut * n) * np.hamming(101)
        x = np.convolve(x, taps / taps.sum(), mode="same")
    times = np.arange(int(len(x) * rate / pcm.rate)) / rate
    y = np.interp(times, np.arange(len(x)) / pcm.rate, x)
    return Pcm(np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes(), rate)
