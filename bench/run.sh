#!/usr/bin/env bash
# One command for the whole benchmark: set up like the tests do (mosquitto, .venv), add
# what only the bench needs (aiomqtt, mosquitto's C clients), then every contender on one
# local mosquitto. Arguments go to bench.run:
#   bash bench/run.sh              # the full run, 3 rounds (about 30 minutes on 2 cores)
#   bash bench/run.sh --quick      # tiny counts, one round: checks that it works (seconds)
#   bash bench/run.sh --only throughput latency --rounds 5 --out /tmp/bench.md
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v mosquitto_pub >/dev/null 2>&1 || ! command -v mosquitto_sub >/dev/null 2>&1; then
  echo "bench: installing mosquitto-clients from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mosquitto-clients >/dev/null
fi
if ! .venv/bin/python -c 'import aiomqtt' >/dev/null 2>&1; then
  echo "bench: installing the bench extra (aiomqtt) into .venv" >&2
  .venv/bin/python -m pip install -q -e '.[bench]'
fi
exec .venv/bin/python -m bench.run "$@"
