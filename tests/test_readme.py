"""Every command the README prints works as printed, in an environment with nothing set."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.slow

README = BASE_DIR / "README.md"


def readme_commands() -> list[str]:
    """The `.venv/bin/python ...` lines of the README's shell blocks, without their comments."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/python")]


def clean_environment() -> dict[str, str]:
    """What a new user's shell has: no SECRET_KEY, DEBUG, DATABASE_URL or REDIS_URL.

    VAR_DIR is the suite's own, so the commands reuse its embedded servers instead of touching var/.
    """
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "VAR_DIR": str(settings.VAR_DIR)}


def test_the_readme_prints_the_commands_a_user_needs() -> None:
    names = {shlex.split(line)[2] if "manage.py" in line else line for line in readme_commands()}
    assert {"createsuperuser", "import_patents", "shell", "train_generator", "generate", "bench_generation"} <= names


@pytest.mark.parametrize("line", readme_commands())
def test_a_readme_command_runs_in_a_clean_environment(line: str, db: None) -> None:
    arguments = shlex.split(line)
    # Long or interactive commands answer --help, which still loads the settings, the apps and the command;
    # a shell reads its (empty) input and exits.
    if arguments[-1] != "shell":
        arguments.append("--help")
    result = subprocess.run(
        [str(BASE_DIR / arguments[0]), *arguments[1:]],
        cwd=BASE_DIR,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_a_deployment_on_real_servers_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), "manage.py", "check"],
        cwd=BASE_DIR,
        env={**clean_environment(), "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "REDIS_URL": "redis://x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "RuntimeError: SECRET_KEY must be set" in result.stderr


def test_the_local_key_is_random_private_and_kept(tmp_path: Path) -> None:
    from allpatents.settings import local_secret_key

    first = local_secret_key(tmp_path)

    assert local_secret_key(tmp_path) == first
    assert len(first) >= 50
    assert local_secret_key(tmp_path / "other") != first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
