"""A real RabbitMQ node with its MQTT plugin, started by the tests on free loopback ports.

Debian's ``rabbitmq-server`` is run as a plain child process, nothing of the system's
install is used: its own epmd on a free port, its own node name, cookie, database, logs,
config and ``enabled_plugins`` in the test's directory, every ``RABBITMQ_*``/``ERL_*``
variable of the caller's environment dropped. A node the Debian package may have started
(``rabbit@host`` on 5672/4369) is neither seen nor touched.

``NOTIFY_SOCKET`` points at a datagram socket of ours: the start script then execs the
Erlang VM (so the child *is* the broker, and SIGTERM/SIGKILL reach it directly) and the
node says ``READY=1`` there once it has booted, a condition to wait on instead of a guess.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tars_mqtt.testing import free_port, wait_for_port

__all__ = ["RABBITMQCTL", "RABBITMQ_SERVER", "Epmd", "RabbitMQ", "cluster_config"]

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the real script, not the su wrapper
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
_EPMD = shutil.which("epmd") or "/usr/bin/epmd"


def _installed() -> None:
    if not Path(RABBITMQ_SERVER).exists() or not Path(_EPMD).exists():
        raise RuntimeError("rabbitmq-server is not installed: run scripts/setup.sh, or"
                           " apt-get install -y rabbitmq-server")


class Epmd:
    """The Erlang port mapper for the test nodes, on a free loopback port; several nodes
    that are to form a cluster share one."""

    def __init__(self, port: int | None = None) -> None:
        _installed()
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Epmd:
        self.proc = subprocess.Popen([_EPMD, "-port", str(self.port), "-address", "127.0.0.1"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port, timeout)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class RabbitMQ:
    """One RabbitMQ node (AMQP, MQTT and distribution on free 127.0.0.1 ports).

    ``extra`` lines are appended to its ``rabbitmq.conf``. ``restart()`` keeps the ports
    and the database, so sessions and retained messages meet a restarted broker, as on a
    real host. Without ``epmd`` the node starts (and stops) its own.
    """

    def __init__(self, workdir: Path, *, epmd: Epmd | None = None, cookie: str | None = None,
                 extra: str = "") -> None:
        _installed()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = f"tars-{os.getpid()}-{secrets.token_hex(3)}"
        self.node = f"{self.name}@localhost"
        self.amqp_port, self.mqtt_port, self.dist_port = free_port(), free_port(), free_port()
        self.extra = extra
        self._own_epmd = epmd is None
        self.epmd = epmd or Epmd()
        self.cookie = cookie or secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "log" / f"{self.node}.log"
        self._out_path = workdir / "stdout.log"
        # AF_UNIX paths are short (108 bytes): pytest's tmp_path can be longer.
        self._notify_dir = Path(tempfile.mkdtemp(prefix="tars-rmq-"))
        self._notify_path = self._notify_dir / "notify"
        self._notify: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def config_text(self) -> str:
        lines = [
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
            f"mqtt.listeners.tcp.1 = 127.0.0.1:{self.mqtt_port}",
            "mqtt.allow_anonymous = true",  # as the guest user, which may log in on loopback
            "log.console = false",
            "log.file.level = info",
            "disk_free_limit.absolute = 1MB",  # a full CI disk is not what these tests are about
        ]
        return "\n".join(lines) + "\n" + self.extra + "\n"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_", "NOTIFY_SOCKET"))}
        d = self.workdir
        env.update(
            HOME=str(d),  # the Erlang cookie lives in $HOME
            NOTIFY_SOCKET=str(self._notify_path),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd.port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
            RABBITMQ_PID_FILE=str(d / "rabbitmq.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def _write_files(self) -> None:
        d = self.workdir
        (d / "rabbitmq.conf").write_text(self.config_text())
        (d / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (d / "rabbitmq-env.conf").write_text("")
        cookie = d / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)  # Erlang refuses a cookie others can read

    def start(self, timeout: float = 90.0) -> RabbitMQ:
        """Boot the node and return once it says READY (its MQTT listener is then up).

        The first boot of a fresh node takes longer (~9 s on 2 cores, 3-6 s of it the MQTT
        plugin waiting for peers that might join); a restart ~4 s.
        """
        if self._own_epmd and self.epmd.proc is None:
            self.epmd.start()
        self._write_files()
        self._open_notify()
        out = open(self._out_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self._environment(), cwd=self.workdir,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()
        try:
            self._wait_ready(timeout)
            wait_for_port(self.mqtt_port, 10.0)
        except (TimeoutError, RuntimeError) as exc:
            self.kill()
            raise RuntimeError(f"RabbitMQ did not start ({exc}); its log:\n{self.log()}") from None
        return self

    def _open_notify(self) -> None:
        if self._notify is not None:
            self._notify.close()
        with contextlib.suppress(FileNotFoundError):
            self._notify_path.unlink()
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self._notify_path))
        self._notify.settimeout(0.2)

    def _wait_ready(self, timeout: float) -> None:
        assert self._notify is not None and self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if b"READY=1" in self._notify.recv(4096):
                    return
            except TimeoutError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the node exited with {self.proc.returncode}")
        raise TimeoutError(f"no READY within {timeout} s")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the node closes its connections and saves its state on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the node dies without a word, as on a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the VM and its port helpers
            self.proc.wait(10)
        self.proc = None

    def restart(self, timeout: float = 90.0) -> None:
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the node, its epmd (if its own) and remove the notify socket. Idempotent."""
        self.stop()
        if self._own_epmd:
            self.epmd.stop()
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        shutil.rmtree(self._notify_dir, ignore_errors=True)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl`` against this node (each call boots a small VM: ~1-2 s)."""
        env = {k: v for k, v in self._environment().items() if k != "NOTIFY_SOCKET"}
        done = subprocess.run([RABBITMQCTL, "-n", self.node, *args], env=env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """The tail of the node's log (and of its console output, where boot errors go)."""
        text = ""
        for path in (self._out_path, self.log_path):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")[-3000:]
        return text


def cluster_config(nodes: list[RabbitMQ]) -> str:
    """``rabbitmq.conf`` lines that make ``nodes`` one cluster as they boot (in order).

    They must share an :class:`Epmd` and a cookie.
    """
    lines = ["cluster_formation.peer_discovery_backend = classic_config"]
    lines += [f"cluster_formation.classic_config.nodes.{i} = {node.node}"
              for i, node in enumerate(nodes, start=1)]
    return "\n".join(lines)
