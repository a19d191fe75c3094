#!/usr/bin/env bash
# The test command: set up, lint and type-check, then the whole suite against a real
# mosquitto that the fixtures start on free loopback ports. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GPIOZERO_PIN_FACTORY=mock
.venv/bin/ruff check .
.venv/bin/mypy --strict tars_mqtt hw services
exec .venv/bin/python -m pytest -q "$@"
