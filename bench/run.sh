#!/usr/bin/env bash
# One command for the whole benchmark: set up like the tests do (mosquitto, .venv), then
# raw paho-mqtt against tars_mqtt on one local mosquitto. Arguments go to bench.run:
#   bash bench/run.sh              # full run, about 5 minutes
#   bash bench/run.sh --quick      # smaller counts, about 1 minute
#   bash bench/run.sh --only throughput latency --out /tmp/bench.md
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m bench.run "$@"
