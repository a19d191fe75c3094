"""tars-ui as a process: the runtime's exit codes for what it cannot start with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tars_ui_without_aiohttp_exits_2_naming_the_extra() -> None:
    code = ("import sys; sys.modules['aiohttp'] = None\n"
            "from services.ui.service import main; sys.exit(main())")
    env = {**os.environ, "MQTT_URL": "mqtt://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "pip install 'tars-mqtt[ui]'" in done.stderr


def test_tars_ui_with_a_bad_setting_exits_2_naming_it() -> None:
    env = {**os.environ, "MQTT_URL": "mqtt://127.0.0.1:9", "TARS_UI_BIND": "0.0.0.0"}
    env.pop("TARS_UI_TOKEN_FILE", None)
    done = subprocess.run([sys.executable, "-m", "services.ui.service"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "TARS_UI_BIND='0.0.0.0' lets other machines reach the controls" in done.stderr
