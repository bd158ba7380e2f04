"""Faults the tests inflict on real servers: a database connection cut and restored, a broker restarted."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
from django.conf import settings
from django.db import connection

from allpatents.embedded import start_valkey


class FlakyDatabaseLink:
    """A TCP door to the test database's socket that can be shut: a PostgreSQL going away and coming back.

    Shut, it drops every open connection and hangs up on new ones, as a restarting server does.
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.database_url = ""  # set by to_test_database
        self.open = True
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            server = socket.socket(socket.AF_UNIX)
            server.connect(self.socket_path)
            self.connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def shut(self) -> None:
        self.open = False
        for end in self.connections:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    def reopen(self) -> None:
        self.open = True

    @classmethod
    def to_test_database(cls) -> FlakyDatabaseLink:
        database = connection.settings_dict
        link = cls(str(Path(database["HOST"]) / f".s.PGSQL.{database['PORT']}"))
        link.database_url = f"postgresql://{database['USER']}@127.0.0.1:{link.port}/{database['NAME']}"
        return link

    def close(self) -> None:
        self.shut()
        self.listener.close()


def restart_test_broker(down_for: float) -> None:
    """Stop the suite's Valkey (SIGTERM: its append-only file is flushed, as in a restart), wait, start it
    again on the same port and data: queued and unacknowledged tasks are back."""
    directory = Path(settings.VAR_DIR) / "valkey"
    pid = int((directory / "valkey.pid").read_text())
    port = int((directory / "port").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(down_for)
    start_valkey(directory, port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError("The test broker did not come back")
