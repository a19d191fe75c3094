"""The command's client: ``MQTT_*`` settings with the command line laid over them.

The options are applied as the variables they stand for, and the whole set is checked
once: ``--url mqtts://...`` with ``MQTT_TLS_CA`` in the environment is one valid setting,
not an error found before the URL was applied. A rule broken by an option is reported
under the option's name, one broken by the environment under the variable's.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ..client import MQTTClient
from ..config import MQTTConfig
from ..errors import ConfigError
from ._args import UsageError

__all__ = ["client_for", "config_for"]

# option dest -> (the variable it stands for, the option's name in messages)
_OPTIONS = {
    "url": ("MQTT_URL", "--url"),
    "username": ("MQTT_USERNAME", "--username"),
    "password_file": ("MQTT_PASSWORD_FILE", "--password-file"),
    "cafile": ("MQTT_TLS_CA", "--cafile"),
    "cert": ("MQTT_TLS_CERT", "--cert"),
    "key": ("MQTT_TLS_KEY", "--key"),
    "insecure": ("MQTT_TLS_INSECURE", "--insecure"),
}
# The command is no service: no health, no heartbeat, no will, no session left behind.
_FIXED = {"MQTT_ENABLE_HEALTH": "false", "MQTT_ENABLE_HEARTBEAT": "false",
          "MQTT_WORKERS": "1", "MQTT_CLEAN_START": "true", "MQTT_SESSION_EXPIRY": "0"}


def config_for(args: argparse.Namespace, environ: Mapping[str, str] | None = None
               ) -> MQTTConfig:
    """The environment's ``MQTT_*`` settings, then the options; never a service's identity."""
    env = dict(os.environ if environ is None else environ)
    given: dict[str, str] = {}
    for dest, (var, option) in _OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        env[var] = "true" if value is True else str(value)
        given[var] = option
    if "MQTT_PASSWORD_FILE" in given:
        env.pop("MQTT_PASSWORD", None)  # the file named on the command line wins
    elif "MQTT_USERNAME" in given and _environ_user(environ) not in (None, args.username):
        env.pop("MQTT_PASSWORD", None)  # another login: the environment's secret is not its
        env.pop("MQTT_PASSWORD_FILE", None)
    client_id = args.client_id or f"tars-mqtt-cli-{os.getpid()}-{secrets.token_hex(3)}"
    env.update(_FIXED, MQTT_CLIENT_ID=client_id)
    if args.client_id:
        given["MQTT_CLIENT_ID"] = "--client-id"
    try:
        return MQTTConfig.from_env(environ=env)
    except ConfigError as exc:
        text = str(exc)
        var = text.partition(":")[0]
        if var == "MQTT_TLS_CA" and var not in given and "TLS settings given" in text:
            # a TLS option with a plain URL: blame the option typed, if one was
            var = next((v for v in given if v.startswith("MQTT_TLS_")), var)
            text = var + text[len("MQTT_TLS_CA"):]
        if var in given:
            raise UsageError(given[var] + text[len(var):]) from None
        raise


def _environ_user(environ: Mapping[str, str] | None) -> str | None:
    """The login the environment's password belongs to."""
    return (os.environ if environ is None else environ).get("MQTT_USERNAME") or None


@contextmanager
def client_for(args: argparse.Namespace) -> Iterator[MQTTClient]:
    """A started client for the command, stopped when the block ends."""
    client = MQTTClient(config_for(args))
    client.start(timeout=args.connect_timeout)
    try:
        yield client
    finally:
        client.stop(timeout=2.0)
