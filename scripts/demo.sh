#!/usr/bin/env bash
# The main job: set up, then run the demo (its own mosquitto, services on mock pins).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GPIOZERO_PIN_FACTORY=mock
exec .venv/bin/python -m services.demo "$@"
