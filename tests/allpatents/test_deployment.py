"""The documented production settings (docker/.env.example) pass Django's deployment checks."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.slow


def documented_settings() -> dict[str, str]:
    lines = (BASE_DIR / "docker" / ".env.example").read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {**pairs, "SECRET_KEY": secrets.token_urlsafe(50)}  # the one value a deployer must supply


def test_check_deploy_is_clean_under_the_documented_production_settings() -> None:
    result = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **documented_settings()},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_without_https_the_deployment_checks_name_what_is_missing() -> None:
    result = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **documented_settings(), "HTTPS": "false"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "security.W004" in result.stderr  # no HSTS
    assert "security.W008" in result.stderr  # no redirect to https
