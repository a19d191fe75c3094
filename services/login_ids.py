"""The broker plugin that ties client ids to logins, built on the robot by tars-install.

mosquitto 2.0 cannot protect some client ids while leaving others free, so a small plugin
on its public plugin API (``deploy/tars_login_ids.c``) refuses, at CONNECT, a service
login asking for any id but its own name and any other login asking for a service's name.
The tools login keeps any other id, so several tools clients can be connected at once.
It is compiled with the system's C compiler because a plugin must match the broker's
architecture and headers; building it is the only step that needs them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["LIBRARY", "PACKAGES", "SOURCE", "BuildError", "build", "config_lines"]

SOURCE = "usr/lib/tars/tars_login_ids.c"
LIBRARY = "usr/lib/tars/tars_login_ids.so"
PACKAGES = ("gcc", "mosquitto-dev", "libmosquitto-dev")  # Debian's names
_INSTALL_HINT = "apt-get install " + " ".join(PACKAGES)


class BuildError(Exception):
    """The plugin could not be compiled; the message says what to install or what failed."""


def config_lines(library: str, logins: Sequence[str]) -> str:
    """The ``tars.conf`` lines that load the plugin: ``logins`` own their client ids."""
    return f"plugin {library}\nplugin_opt_logins {' '.join(logins)}"


def build(source: Path, library: Path) -> None:
    """Compile ``source`` into ``library`` (mode 0644, replaced atomically).

    Raises:
        BuildError: no compiler, no mosquitto headers, or the compiler failed.
    """
    compiler = os.environ.get("CC") or "cc"
    partial = library.with_name(f".{library.name}.tars-install")
    command = [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(partial), str(source)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError:
        raise BuildError(f"no C compiler ({compiler}) to build the broker plugin"
                         f" {library.name}: {_INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"building the broker plugin {library.name} took over 300 s") from None
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        if "mosquitto" in done.stderr and "No such file" in done.stderr:
            raise BuildError(f"the mosquitto plugin headers are missing to build {library.name}:"
                             f" {_INSTALL_HINT}")
        raise BuildError(f"building the broker plugin {library.name} failed:"
                         f" {done.stderr.strip()[-800:]}")
    os.chmod(partial, 0o644)
    os.replace(partial, library)
