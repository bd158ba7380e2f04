"""Any manage.py command starts, or reuses, the embedded PostgreSQL and Valkey on its own."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.slow


def manage(*args: str, var_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**env, "VAR_DIR": str(var_dir), "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_command_on_a_fresh_machine_starts_the_services_and_stops_them_after(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"

    result = manage("migrate", "--verbosity", "0", var_dir=var_dir)
    assert result.returncode == 0, result.stderr
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from search.models import Patent; print(Patent.objects.count())",
        var_dir=var_dir,
    )

    assert (result.returncode, result.stdout) == (0, "0\n"), result.stderr
    assert (var_dir / "pg" / "PG_VERSION").exists()
    # The last process out stopped both servers.
    assert not (var_dir / "pg" / "postmaster.pid").exists()
    assert not answers(int((var_dir / "valkey" / "port").read_text()))


def test_a_command_reuses_the_running_services_and_leaves_them_running(db: None) -> None:
    from django.conf import settings

    result = manage("check", "--database", "default", var_dir=Path(settings.VAR_DIR))

    assert result.returncode == 0, result.stderr
    # A new connection still works: the command did not stop the server we lease.
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)
