#!/usr/bin/env bash
# Installs what the demo and the tests need, idempotently: mosquitto (and its C clients,
# and what building its plugin takes: gcc and the mosquitto headers),
# chromium and its chromedriver, espeak-ng (the robot's voice, and the demo's users) and
# rabbitmq-server (for the tests on a second broker only)
# from Debian's packages when missing, a venv in .venv, and this project with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)  # the bench's C peer
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
# tars-install builds the broker plugin that ties client ids to logins (the tests run it)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
[ -f /usr/include/mosquitto_broker.h ] || need_apt+=(mosquitto-dev)
[ -f /usr/include/mosquitto.h ] || need_apt+=(libmosquitto-dev)
new_rabbit=0
if ! [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then need_apt+=(rabbitmq-server); new_rabbit=1; fi
# the web view's browser tests drive Debian's chromium through its chromedriver
need_browser=()
[ -x /usr/bin/chromium ] || need_browser+=(chromium)
[ -x /usr/bin/chromedriver ] || need_browser+=(chromium-driver)
if ((${#need_apt[@]} + ${#need_browser[@]})); then
  echo "setup: installing ${need_apt[*]} ${need_browser[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own RabbitMQ node on free ports; the package's own node (and
  # epmd) must not start on install: a policy-rc.d that says "no" while apt runs.
  own_policy=0
  if ((new_rabbit)) && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  if ((${#need_apt[@]})); then
    apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need_apt[@]}" >/dev/null \
      || { ((own_policy)) && rm -f /usr/sbin/policy-rc.d; exit 1; }
  fi
  if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  if ((new_rabbit)) && [ -d /run/systemd/system ]; then  # and not at the next boot either
    systemctl disable --now rabbitmq-server.service epmd.socket epmd.service >/dev/null 2>&1 || true
  fi
  if ((${#need_browser[@]})); then
    apt-get install -y -qq --no-install-recommends "${need_browser[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.tars-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv" >&2
  if ! .venv/bin/python -m pip install -q -e '.[dev]' >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    exit 1
  fi
  touch "$stamp"
fi
