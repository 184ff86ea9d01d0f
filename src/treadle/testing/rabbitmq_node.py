"""A RabbitMQ node of a test's own, on free ports, that the test may restart.

Tests that restart a broker must not disturb the machine's shared RabbitMQ:
:func:`rabbitmq_node` starts a separate node (``treadle-test-<random>@localhost``) from
the installed RabbitMQ, in a temporary directory that holds everything it writes: its
database and logs, its Erlang cookie (``HOME`` points there) and its configuration (the
system's ``rabbitmq-env.conf``, ``rabbitmq.conf`` and ``enabled_plugins`` are not read;
no plugin is enabled; ``guest`` may connect from localhost). It listens for AMQP on a free
port of 127.0.0.1, takes another for Erlang distribution, and registers with a port
mapper (``epmd``) of its own on a third, so neither the shared node nor the shared
``epmd`` ever sees it. :meth:`RabbitMQNode.stop_app` and :meth:`RabbitMQNode.start_app`
restart the broker as operators do (``rabbitmqctl stop_app`` / ``start_app``: every
client connection is closed; durable queues and persistent messages are kept). At exit
the node is stopped (``rabbitmqctl stop``, then its process group is killed by pid if it
lingers), its ``epmd`` is stopped by pid and the directory removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from treadle.testing.processes import wait_until
from treadle.testing.redis_server import free_port

__all__ = ["RabbitMQNode", "rabbitmq_node"]

#: Where Debian's package keeps the real scripts (``/usr/sbin`` holds a wrapper that
#: switches to the ``rabbitmq`` user and its home, which would share the system's cookie).
_PACKAGE_SCRIPTS = Path("/usr/lib/rabbitmq/bin")

_CONFIG = """\
# A private test node: guest/guest, from localhost only; listeners come from the
# environment (RABBITMQ_NODE_IP_ADDRESS, RABBITMQ_NODE_PORT).
default_user = guest
default_pass = guest
loopback_users.guest = true
log.console = false
log.file.level = info
"""


def _tool(name: str) -> str:
    packaged = _PACKAGE_SCRIPTS / name
    if packaged.exists():
        return str(packaged)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed")
    return found


def _epmd() -> str:
    return shutil.which("epmd") or "/usr/bin/epmd"


class RabbitMQNode:
    """One private RabbitMQ node: its URL, and how to restart and stop it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = f"treadle-test-{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.log = directory / "server.out"
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._environment = self._prepare()

    def __repr__(self) -> str:
        return f"<RabbitMQNode {self.name} {self.url} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server is not None else None

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    def _prepare(self) -> dict[str, str]:
        """Write the node's files; returns the environment of its server and ``rabbitmqctl``."""
        folder = self.directory
        home = folder / "home"
        for sub in (home, folder / "mnesia", folder / "log"):
            sub.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper(), encoding="ascii")
        cookie.chmod(0o400)
        (folder / "enabled_plugins").write_text("", encoding="ascii")
        (folder / "rabbitmq-env.conf").write_text("", encoding="ascii")
        (folder / "rabbitmq.conf").write_text(_CONFIG, encoding="ascii")
        (folder / "conf.d").mkdir()
        # Nothing of the caller's RabbitMQ or Erlang settings leaks in (ERL_FLAGS ...).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_")) and k != "CONF_ENV_FILE"
        }
        env.update(
            HOME=str(home),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(folder / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(folder / "rabbitmq.conf"),
            RABBITMQ_CONFIG_FILES=str(folder / "conf.d"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(folder / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(folder / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(folder / "mnesia"),
            RABBITMQ_LOG_BASE=str(folder / "log"),
            RABBITMQ_PID_FILE=str(folder / "node.pid"),
            # Our epmd is running already; distribution only on the loopback interface.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
            ),
        )
        return env

    # -- starting --------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the port mapper and the node; wait until the node accepts AMQP."""
        if self.running:
            return
        if self._epmd is None:
            self._epmd = subprocess.Popen(
                [_epmd(), "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=self._environment,
                start_new_session=True,
            )
            wait_until(self._epmd_answers, 10, f"epmd on port {self.epmd_port}")
        with self.log.open("ab") as out:
            self._server = subprocess.Popen(
                [_tool("rabbitmq-server")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=self._environment,
                start_new_session=True,  # its own group: the VM and its helpers die with it
            )
        self.wait_for_amqp(timeout)

    def _epmd_answers(self) -> bool:
        assert self._epmd is not None
        if self._epmd.poll() is not None:
            raise AssertionError(f"epmd on port {self.epmd_port} exited")
        done = subprocess.run(
            [_epmd(), "-port", str(self.epmd_port), "-names"],
            capture_output=True,
            env=self._environment,
            timeout=10,
            check=False,
        )
        return done.returncode == 0

    def wait_for_amqp(self, timeout: float = 60.0) -> None:
        """Wait until the node accepts an AMQP connection; fail at once if it exits."""
        wait_until(
            self._accepts, timeout, f"RabbitMQ node {self.name} accepting AMQP", interval=0.2
        )

    def _accepts(self) -> bool:
        from kombu.connection import Connection

        if not self.running:
            raise AssertionError(f"RabbitMQ node {self.name} exited:\n{self.tail()}")
        connection = Connection(self.url, connect_timeout=2)
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
        except Exception:
            return False
        finally:
            connection.release()
        return True

    def tail(self, characters: int = 3000) -> str:
        """The end of the server's output and of its log, for failure messages."""
        texts = []
        for path in [self.log, *sorted((self.directory / "log").glob("*.log"))]:
            with suppress(OSError):
                texts.append(f"--- {path.name}:\n{path.read_text(errors='replace')[-characters:]}")
        return "\n".join(texts)

    # -- operating it ----------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n NODE ARGS`` against this node; its output (raises on failure)."""
        done = subprocess.run(
            [_tool("rabbitmqctl"), "-n", self.name, "-q", *args],
            capture_output=True,
            text=True,
            cwd=self.directory,
            env=self._environment,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"rabbitmqctl {' '.join(args)} on {self.name} exited with {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout

    def stop_app(self) -> None:
        """Stop the broker application (the VM stays up): every connection is closed."""
        self.ctl("stop_app")

    def start_app(self, timeout: float = 60.0) -> None:
        """Start the broker application again; returns once it accepts AMQP."""
        self.ctl("start_app")
        self.wait_for_amqp(timeout)

    # -- stopping --------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """``rabbitmqctl stop`` (SIGTERM to the node if that fails), then SIGKILL to the
        node's process group, whatever is left of it after ``timeout``; then the port
        mapper, by pid. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            try:
                if server.poll() is None:
                    try:
                        self.ctl("stop", timeout=timeout)
                    except (AssertionError, subprocess.TimeoutExpired):
                        # The start script's own handler stops the VM on SIGTERM.
                        with suppress(ProcessLookupError):
                            os.kill(server.pid, signal.SIGTERM)
                    with suppress(subprocess.TimeoutExpired):
                        server.wait(timeout)
            finally:
                # The group may still hold the VM or a helper; nothing of it may outlive us.
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(server.pid, signal.SIGKILL)
                with suppress(subprocess.TimeoutExpired):
                    server.wait(10)
        mapper, self._epmd = self._epmd, None
        if mapper is not None:
            with suppress(ProcessLookupError):
                mapper.terminate()
            try:
                mapper.wait(10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    mapper.kill()
                mapper.wait(10)


@contextmanager
def rabbitmq_node(timeout: float = 60.0) -> Iterator[RabbitMQNode]:
    """A running private RabbitMQ node (see the module docstring), stopped at exit."""
    with tempfile.TemporaryDirectory(prefix="treadle-rabbitmq-") as folder:
        node = RabbitMQNode(Path(folder))
        try:
            node.start(timeout)
            yield node
        finally:
            node.stop()
