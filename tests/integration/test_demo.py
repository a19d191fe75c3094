"""The README's main command: ``python -m services.demo`` plays the scene and exits 0,
with real speech (espeak-ng for the user, tars-stt hearing, tars-tts answering).

And it fails loudly: a service that cannot start, or a step that does not happen in
time, is named, and the exit code is 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_demo(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The demo, its work directory (kept when it fails) under ``tmp``."""
    environ = {k: v for k, v in os.environ.items() if k != "MQTT_URL"}
    environ.update(GPIOZERO_PIN_FACTORY="mock", TMPDIR=str(tmp), **env)
    return subprocess.run([sys.executable, "-m", "services.demo"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=90)


@pytest.mark.timeout(100)
def test_the_demo_plays_the_whole_scene_and_exits_0(tmp_path: Path) -> None:
    done = run_demo(tmp_path, TARS_DEMO_OUTPUT=str(tmp_path / "out"))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    lines = out.splitlines()

    def line(pattern: str) -> int:
        """Index of the first timeline line matching ``pattern``."""
        found = [i for i, text in enumerate(lines) if re.search(pattern, text)]
        assert found, f"no line matching {pattern!r} in:\n{out}"
        return found[0]

    order = [
        line(r"wake\s+wake/event\s+wake\.event\s+type=wake source=button"),
        line(r"router\s+system/state\s+system\.state\s+state=listening"),
        line(r"stt\s+stt/final\s+stt\.final\s+text=please wave lang=en confidence=0\.\d+"),
        line(r"router\s+movement/command\s+movement\.command\s+action=wave"),
        line(r"router\s+tts/say\s+tts\.say\s+text=Okay, waving\."),
        line(r"tts\s+tts/status\s+tts\.status\s+event=speaking_start"),
        line(r"movement\s+movement/status\s+movement\.status\s+event=completed action=wave"),
        line(r"router\s+llm/request\s+llm\.request\s+text=my c"),
        line(r"router\s+tts/say\s+tts\.say\s+text=I cannot look that up"),
        line(r"llm\s+memory/query\s+memory\.query\s+text=do you re"),
        line(r"llm\s+llm/stream\s+llm\.stream\s+delta=I remember that you said: my c"),
        line(r"router\s+tts/say\s+tts\.say\s+text=I remember that you said: my c"),
        line(r"wake\s+wake/event\s+wake\.event\s+type=cancel"),
        line(r"router\s+tts/control\s+tts\.control\s+action=stop"),
        line(r"servo angles at the end"),
        line(r"what the user said"),
        line(r"what the robot said"),
    ]
    assert order == sorted(order), out
    assert re.search(r"right_arm\s+-?\d+\.\d\d°", out)
    for name in ("movement", "wake", "memory", "llm", "router", "tts", "stt"):
        line(rf"{name}\s+system/health/{name}\s+system\.health\s+ok=False event=shutdown")
    assert "demo: ok" in lines[-1]
    assert list(tmp_path.glob("tars-demo-*")) == []  # the work directory: cleaned up
    # The speech is kept, and every file the demo printed is a WAV of a plausible length.
    printed = re.findall(r"^\s+(/\S+\.wav)\s+(\d+\.\d) s$", out, re.MULTILINE)
    heard = [p for p, _ in printed if "/heard/" in p]
    said = [p for p, _ in printed if "/said/" in p]
    assert len(heard) == 3 and len(said) >= 3, out
    for path, seconds in printed:
        with wave.open(path, "rb") as wav:
            assert abs(wav.getnframes() / wav.getframerate() - float(seconds)) < 0.06
        assert float(seconds) > 0.2, path


@pytest.mark.timeout(60)
def test_a_service_that_cannot_start_fails_the_demo_naming_it(tmp_path: Path) -> None:
    done = run_demo(tmp_path, TARS_CALIBRATION=str(tmp_path / "missing.toml"))
    assert done.returncode == 1
    assert "demo: FAILED: no system/health/movement" in done.stderr
    assert "movement exited with code 2" in done.stderr
    assert "missing.toml" in done.stderr  # the movement log's tail says why


@pytest.mark.timeout(60)
def test_a_step_that_does_not_happen_in_time_fails_the_demo_naming_it(tmp_path: Path) -> None:
    done = run_demo(tmp_path, TARS_DEMO_STEP_TIMEOUT="0.5")  # the LLM timeout alone is 1.5 s
    assert done.returncode == 1
    assert re.search(r"demo: FAILED: step \d \(.+\): no \S+ .* not within 0\.5 s", done.stderr), \
        done.stderr
