"""``tars-install``: the TARS services, their broker config and credentials, into a root.

Writes under ``--root`` (``/`` on the robot, any directory for an image or a test)::

    etc/tars/<user>.env, <user>.password         one login per bus user (passwords kept)
    etc/mosquitto/conf.d/tars.conf, tars.acl, tars.passwd
    usr/lib/tars/tars_login_ids.c, .so             the broker plugin: client ids belong to logins
    etc/systemd/system/tars-*.service, tars.target  (+ the .wants/ symlinks that enable them)
    usr/lib/sysusers.d/tars.conf, usr/lib/tmpfiles.d/tars.conf  (the tars user, file owners)

Idempotent: a second run with the same options changes nothing. Only with ``--root /``
does it touch the host beyond these files (create the user, fix owners, reload systemd,
restart mosquitto when its files changed); the commands are planned by the pure
:func:`host_commands` and run by :func:`main`.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shlex
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

from services import login_ids
from services.passwords import hash_password, passwd_text, password_matches
from tars_mqtt import ConfigError, MQTTConfig

__all__ = [
    "BrokerSettings",
    "InstallError",
    "TLSListener",
    "USERS",
    "broker_conf",
    "hash_password",
    "host_commands",
    "install",
    "main",
    "password_matches",
]

SERVICES = ("movement", "wake", "router", "llm", "memory", "ui", "tts", "stt")  # own units
PEERS: tuple[str, ...] = ()  # other clients of the bus (services/topics.py); no unit here
TOOLS = "tools"  # the tars-mqtt CLI and people: read all, send commands
USERS = (*SERVICES, *PEERS, TOOLS)
DEFAULT_PREFIX = "/opt/tars"
PASSWD_FILE = "/etc/mosquitto/tars.passwd"
ACL_FILE = "/etc/mosquitto/tars.acl"
SYSUSERS = "usr/lib/sysusers.d/tars.conf"
TMPFILES = "usr/lib/tmpfiles.d/tars.conf"


class InstallError(Exception):
    """The installer cannot do what it was asked; the message says why."""


@dataclass(frozen=True)
class TLSListener:
    """An mqtts:// listener: paths as seen on the robot."""

    cert: str
    key: str
    ca: str | None = None  # only needed if clients present certificates
    port: int = 8883
    bind: str = ""  # every interface: TLS is for tools off the robot


@dataclass(frozen=True)
class BrokerSettings:
    """What ``etc/mosquitto/conf.d/tars.conf`` says."""

    port: int = 1883
    bind: str = "127.0.0.1"
    password_file: str = PASSWD_FILE
    acl_file: str = ACL_FILE
    max_queued: int = 0  # no limit: the broker never drops what it acknowledged
    max_inflight: int = 20
    tls: TLSListener | None = None
    plugin: str = "/" + login_ids.LIBRARY  # tars_login_ids: which login may use which id
    logins: tuple[str, ...] = (*SERVICES, *PEERS)  # own their ids; any other login may not use them


@dataclass
class Report:
    """What one run changed: paths relative to the root, in the order written."""

    changed: list[str] = field(default_factory=list)


# Rendering (pure) -------------------------------------------------------------------------
def _template(name: str) -> str:
    return (resources.files("services") / "deploy" / name).read_text(encoding="utf-8")


def _render(name: str, **values: str) -> str:
    """Fill a template; a line that is only ``$name`` disappears when its value is empty."""
    lines = []
    for line in _template(name).splitlines():
        if line.startswith("$") and line[1:] in values and not values[line[1:]]:
            continue
        lines.append(Template(line).substitute(values))
    return "\n".join(lines).rstrip("\n") + "\n"


def broker_conf(settings: BrokerSettings) -> str:
    """The mosquitto config for the robot's broker."""
    tls = ""
    if settings.tls is not None:
        t = settings.tls
        tls = "\n" + _render("tls.conf.in", tls_port=str(t.port), tls_bind=t.bind,
                             tls_cert=t.cert, tls_key=t.key,
                             tls_cafile=f"cafile {t.ca}" if t.ca else "").rstrip("\n")
    text = _render("mosquitto.conf.in", password_file=settings.password_file,
                   acl_file=settings.acl_file, max_queued=str(settings.max_queued),
                   max_inflight=str(settings.max_inflight),
                   port=str(settings.port), bind=settings.bind, tls_block=tls,
                   plugin=login_ids.config_lines(settings.plugin, settings.logins))
    return text.replace(" \n", "\n")  # "listener 8883 " when bound to every interface


def env_text(user: str, url: str, tls_ca: str | None = None) -> str:
    """``/etc/tars/<user>.env``: what a service's client reads with ``MQTTConfig.from_env``."""
    ca = f"MQTT_TLS_CA={tls_ca}" if tls_ca else ""
    if user == TOOLS:
        return _render("tools.env.in", url=url, tls_ca=ca)
    return _render("service.env.in", user=user, url=url, tls_ca=ca)


def unit_text(source: Path, prefix: str) -> str:
    """A unit from ``systemd/`` with its ``/opt/tars/`` paths moved under ``prefix``."""
    return source.read_text(encoding="utf-8").replace(f"{DEFAULT_PREFIX}/",
                                                      f"{prefix.rstrip('/')}/")


def wanted_by(unit: str) -> list[str]:
    """The ``[Install] WantedBy=`` targets of a unit's text."""
    targets: list[str] = []
    section = ""
    for raw in unit.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Install]" and line.startswith("WantedBy="):
            targets.extend(line.split("=", 1)[1].split())
    return targets


def host_commands(changed: Sequence[str], *, user_exists: bool,
                  gpio_exists: bool) -> list[list[str]]:
    """What ``--root /`` must run after writing the files that ``changed``."""
    commands: list[list[str]] = []
    if not gpio_exists:
        commands.append(["groupadd", "--system", "gpio"])
    if not user_exists:
        commands.append(["useradd", "--system", "--user-group", "--groups", "gpio",
                         "--home-dir", "/nonexistent", "--no-create-home",
                         "--shell", "/usr/sbin/nologin", "--comment", "TARS robot services",
                         "tars"])
    commands.append(["systemd-tmpfiles", "--create", f"/{TMPFILES}"])
    commands.append(["systemctl", "daemon-reload"])
    if any(path.startswith(("etc/mosquitto/", "usr/lib/tars/")) for path in changed):
        commands.append(["systemctl", "restart", "mosquitto.service"])
    return commands


# Writing ----------------------------------------------------------------------------------
def units_dir() -> Path:
    """``systemd/`` of this checkout, else the copy a wheel installs under ``share/tars``."""
    for candidate in (Path(__file__).resolve().parents[1] / "systemd",
                      Path(sys.prefix) / "share" / "tars" / "systemd"):
        if (candidate / "tars.target").is_file():
            return candidate
    raise InstallError("the unit files (systemd/tars.target ...) are not installed with this"
                       " package: run tars-install from a checkout or an editable install")


class _Tree:
    """Writes files under a root, only when their content or mode differs."""

    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def write(self, rel: str, text: str, mode: int) -> None:
        path = self.path(rel)
        data = text.encode("utf-8")
        if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
            if stat.S_IMODE(path.stat().st_mode) != mode:
                os.chmod(path, mode)
                self.report.changed.append(rel.lstrip("/"))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tars-install")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # never briefly public
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        self.report.changed.append(rel.lstrip("/"))

    def link(self, rel: str, target: str) -> None:
        path = self.path(rel)
        if path.is_symlink() and os.readlink(path) == target:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
        self.report.changed.append(rel.lstrip("/"))

    def secret(self, rel: str, mode: int) -> str:
        """The password in ``rel``; made (random) the first time, kept afterwards."""
        path = self.path(rel)
        password = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        if not password:
            password = secrets.token_urlsafe(24)
        self.write(rel, password + "\n", mode)
        return password


def install(root: Path, *, prefix: str = DEFAULT_PREFIX, enable: bool = True,
            url: str | None = None, broker: BrokerSettings | None = None,
            tls_ca: str | None = None) -> Report:
    """Write everything under ``root``; returns what changed. Touches nothing outside it.

    Args:
        prefix: where the venv lives on the robot (``<prefix>/venv/bin/tars-movement``).
        url: what the services connect to; default ``mqtt://127.0.0.1:<broker port>``.
        tls_ca: ``MQTT_TLS_CA`` for the env files (needed when ``url`` is mqtts://).

    Raises:
        InstallError: a bad option, a missing unit file, or no compiler or mosquitto
            headers to build the broker plugin (the message names the Debian packages).
    """
    broker = broker or BrokerSettings()
    url = url or f"mqtt://127.0.0.1:{broker.port}"
    _check(prefix, url, tls_ca)
    report = Report()
    tree = _Tree(root, report)
    passwords: dict[str, str] = {}
    for user in USERS:
        passwords[user] = tree.secret(f"etc/tars/{user}.password",
                                      0o640 if user in SERVICES else 0o600)
        tree.write(f"etc/tars/{user}.env", env_text(user, url, tls_ca), 0o644)
    existing = tree.path(PASSWD_FILE)
    old = existing.read_text(encoding="utf-8") if existing.is_file() else ""
    tree.write(PASSWD_FILE, passwd_text(passwords, old), 0o600)
    tree.write(ACL_FILE, _template("tars.acl"), 0o600)
    tree.write("etc/mosquitto/conf.d/tars.conf", broker_conf(broker), 0o644)
    _plugin(tree)
    tree.write(SYSUSERS, _template("sysusers.conf"), 0o644)
    tree.write(TMPFILES, _template("tmpfiles.conf"), 0o644)
    source = units_dir()
    for name in [f"tars-{s}.service" for s in SERVICES] + ["tars.target"]:
        text = unit_text(source / name, prefix)
        tree.write(f"etc/systemd/system/{name}", text, 0o644)
        for target in wanted_by(text) if enable else []:
            tree.link(f"etc/systemd/system/{target}.wants/{name}", f"/etc/systemd/system/{name}")
    return report


def _plugin(tree: _Tree) -> None:
    """The login-ids plugin: its source, and a build when the source changed or none exists."""
    tree.write(login_ids.SOURCE, _template("tars_login_ids.c"), 0o644)
    library = tree.path(login_ids.LIBRARY)
    if login_ids.SOURCE in tree.report.changed or not library.is_file():
        try:
            login_ids.build(tree.path(login_ids.SOURCE), library)
        except login_ids.BuildError as exc:
            raise InstallError(str(exc)) from None
        tree.report.changed.append(login_ids.LIBRARY)


def _check(prefix: str, url: str, tls_ca: str | None) -> None:
    if not prefix.startswith("/") or shlex.split(prefix) != [prefix]:
        raise InstallError(f"--prefix must be an absolute path without spaces, got {prefix!r}")
    try:
        config = MQTTConfig(url=url, client_id="tars-install")
    except ConfigError as exc:
        raise InstallError(f"--url: {exc}") from None
    if config.tls and not tls_ca:
        raise InstallError(f"--url {url} uses TLS: give --tls-ca so the services can verify"
                           " the broker")


# Command line -----------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tars-install",
        description="Install the TARS services, broker config and credentials under a root.")
    p.add_argument("--root", required=True, type=Path,
                   help="target root: / on the robot, a directory for an image or a test")
    p.add_argument("--prefix", default=DEFAULT_PREFIX,
                   help="where the venv lives on the robot (default %(default)s)")
    p.add_argument("--no-enable", dest="enable", action="store_false",
                   help="do not enable tars.target and the services at boot")
    p.add_argument("--url", help="MQTT_URL of the services (default mqtt://127.0.0.1:PORT)")
    p.add_argument("--port", type=int, default=1883, help="plain listener (default %(default)s)")
    p.add_argument("--bind", default="127.0.0.1",
                   help="address of the plain listener (default %(default)s: robot only)")
    tls = p.add_argument_group("TLS listener (for tools off the robot)")
    tls.add_argument("--tls-cert", help="server certificate (PEM), path on the robot")
    tls.add_argument("--tls-key", help="its private key (PEM), path on the robot")
    tls.add_argument("--tls-ca", help="CA certificate: MQTT_TLS_CA in the env files when"
                     " --url is mqtts://, and the listener's cafile")
    tls.add_argument("--tls-port", type=int, default=8883, help="default %(default)s")
    tls.add_argument("--tls-bind", default="", help="address (default: every interface)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    listener = None
    if args.tls_cert:
        listener = TLSListener(args.tls_cert, args.tls_key, args.tls_ca, args.tls_port,
                               args.tls_bind)
    root = args.root.resolve()
    tls_ca = args.tls_ca if args.url and args.url.startswith(("mqtts:", "wss:")) else None
    try:
        report = install(root, prefix=args.prefix, enable=args.enable, url=args.url,
                         broker=BrokerSettings(port=args.port, bind=args.bind, tls=listener),
                         tls_ca=tls_ca)
    except InstallError as exc:
        print(f"tars-install: {exc}", file=sys.stderr)
        return 2
    for rel in report.changed:
        print(f"wrote /{rel}" if root == Path("/") else f"wrote {root / rel}")
    if not report.changed:
        print("tars-install: nothing to change")
    if root != Path("/"):
        return 0
    for command in host_commands(report.changed, user_exists=_exists(pwd.getpwnam, "tars"),
                                 gpio_exists=_exists(grp.getgrnam, "gpio")):
        print("+", shlex.join(command))
        try:
            _run_host(command)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"tars-install: {shlex.join(command)} failed: {exc}", file=sys.stderr)
            return 1
    print("tars-install: done; start the robot with: systemctl start tars.target")
    return 0


def _run_host(command: list[str]) -> None:
    subprocess.run(command, check=True)


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
