"""Where heard audio comes from: the microphone, a raw PCM stream, or a spool of WAV files.

Each source yields :class:`Piece` items to tars-stt's listening thread: ``begin`` and
``end`` around one file or stream, ``audio`` (16 kHz mono 16-bit samples) in between,
``bad`` for input it had to refuse. ``TARS_STT_INPUT`` chooses:

- ``mic`` (default): the sound card through ``sounddevice`` (``TARS_STT_DEVICE``);
- ``stream:PATH``: raw samples from a FIFO (``arecord -f S16_LE -r 16000 -c 1 > PATH``)
  or a file read once;
- ``dir:PATH``: every ``*.wav`` that appears in PATH is heard once, in name order, then
  deleted (write it under a name starting with ``.`` and rename it when complete).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tars_mqtt import ConfigError

from .audio import BadAudio, decode_wav

__all__ = ["Microphone", "Piece", "Source", "Spool", "Stream", "source_from_env"]

BLOCK = 0.03  # seconds of audio per read from a device or a stream


@dataclass(frozen=True)
class Piece:
    """``kind`` is begin | audio | end | bad; ``data`` the samples; ``name`` what it came from.

    ``recording`` marks a whole recording handed in (a spool file), heard or dropped as one.
    """

    kind: str
    name: str
    data: bytes = b""
    recording: bool = False


class Source(Protocol):
    """Pieces until ``stop`` is set (a source may also just end)."""

    def pieces(self, stop: threading.Event) -> Iterator[Piece]: ...


class Spool:
    """A directory watched for complete WAV files (polled every ``poll`` seconds)."""

    def __init__(self, directory: Path, rate: int, *, poll: float = 0.05) -> None:
        if not directory.is_dir():
            raise ConfigError(f"TARS_STT_INPUT: {str(directory)!r} is not a directory")
        self.directory, self.rate, self.poll = directory, rate, poll

    def pieces(self, stop: threading.Event) -> Iterator[Piece]:
        while not stop.is_set():
            files = sorted(p for p in self.directory.glob("*.wav") if not p.name.startswith("."))
            for path in files:
                if stop.is_set():
                    return
                yield from self._one(path)
            if not files:
                stop.wait(self.poll)

    def _one(self, path: Path) -> Iterator[Piece]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield Piece("bad", path.name, str(exc).encode())
            data = None
        finally:
            with contextlib.suppress(OSError):  # a read-only spool: heard again next start
                path.unlink()
        if data is None:
            return
        try:
            pcm = decode_wav(data, rate=self.rate)
        except BadAudio as exc:
            yield Piece("bad", path.name, str(exc).encode())
            return
        yield Piece("begin", path.name, recording=True)
        for chunk in pcm.chunks(BLOCK):
            yield Piece("audio", path.name, chunk, recording=True)
        yield Piece("end", path.name, recording=True)


class Stream:
    """Raw samples from a FIFO (opened read-write, so a writer that goes away is no EOF)
    or from a regular file (read once)."""

    def __init__(self, path: Path, rate: int) -> None:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(f"TARS_STT_INPUT: {str(path)!r}: {exc}") from None
        self.path, self.rate, self.fifo = path, rate, stat.S_ISFIFO(mode)

    def pieces(self, stop: threading.Event) -> Iterator[Piece]:
        fd = os.open(self.path, os.O_RDWR if self.fifo else os.O_RDONLY)
        block = int(self.rate * BLOCK) * 2
        try:
            yield Piece("begin", self.path.name)
            while not stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(fd, block)
                if not data:
                    break  # a regular file ended
                yield Piece("audio", self.path.name, data)
            yield Piece("end", self.path.name)
        finally:
            os.close(fd)


class Microphone:
    """The sound card through PortAudio (the ``audio`` extra), in blocks of 30 ms."""

    def __init__(self, rate: int, device: str | None = None) -> None:
        try:
            self._sd: Any = importlib.import_module("sounddevice")
        except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
            raise ConfigError(f"TARS_STT_INPUT=mic: {exc}") from None
        self.rate, self.device = rate, device

    def pieces(self, stop: threading.Event) -> Iterator[Piece]:
        frames = int(self.rate * BLOCK)
        with self._sd.RawInputStream(samplerate=self.rate, channels=1, dtype="int16",
                                     blocksize=frames, device=self.device) as stream:
            yield Piece("begin", "mic")
            while not stop.is_set():
                data, _overflowed = stream.read(frames)
                yield Piece("audio", "mic", bytes(data))
            yield Piece("end", "mic")


def source_from_env(rate: int, environ: Mapping[str, str] = os.environ) -> Source:
    """The source ``TARS_STT_INPUT`` names (see the module docstring)."""
    spec = environ.get("TARS_STT_INPUT", "").strip() or "mic"
    if spec == "mic":
        return Microphone(rate, environ.get("TARS_STT_DEVICE", "").strip() or None)
    kind, _, path = spec.partition(":")
    if kind == "dir" and path.strip():
        return Spool(Path(path.strip()), rate)
    if kind == "stream" and path.strip():
        return Stream(Path(path.strip()), rate)
    raise ConfigError(f"TARS_STT_INPUT={spec!r}: use mic, stream:PATH or dir:PATH")
