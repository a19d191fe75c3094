"""The demo's ears and mouth: the user's lines spoken into tars-stt, the robot's kept as WAVs.

:class:`Voices` lays out the demo's speech directories: ``spool`` (tars-stt's input, a
work directory), and in the kept output directory ``heard/`` (every user line as espeak-ng
said it) and ``said/`` (every answer as tars-tts said it).
"""

from __future__ import annotations

import re
import wave
from pathlib import Path

from .audio import encode_wav
from .audio_render import hand_in, user_line

__all__ = ["Voices"]


class Voices:
    """Where the demo's speech goes, and the settings that point tars-tts and tars-stt there."""

    def __init__(self, workdir: Path, output: Path) -> None:
        self.spool, self.heard, self.said = workdir / "spool", output / "heard", output / "said"
        for path in (self.spool, self.heard, self.said):
            path.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        # No mute tail: the demo's user speaks only after the robot has finished.
        return {"TARS_TTS_OUTPUT": f"wav:{self.said}", "TARS_STT_INPUT": f"dir:{self.spool}",
                "TARS_STT_MUTE_TAIL": "0"}

    def say(self, n: int, text: str) -> Path:
        """The user says ``text`` (espeak-ng into tars-stt's spool); the copy kept."""
        pcm = user_line(text)
        kept = self.heard / f"{n:02d}-{re.sub(r'[^a-z]+', '-', text.lower()).strip('-')}.wav"
        kept.write_bytes(encode_wav(pcm))
        hand_in(self.spool, pcm, kept.stem)
        return kept

    def report(self) -> list[str]:
        """The lines that list every WAV kept, heard and said, with its length."""
        lines = []
        for title, where in (("the user said (espeak-ng, heard by tars-stt)", self.heard),
                             ("the robot said (tars-tts)", self.said)):
            lines.append(f"── what {title}:")
            for path in sorted(where.glob("*.wav")):
                with wave.open(str(path), "rb") as wav:
                    seconds = wav.getnframes() / wav.getframerate()
                lines.append(f"     {path}  {seconds:4.1f} s")
        return lines
