"""The production web server's application module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.slow


def test_a_web_worker_loads_the_embedding_model_before_its_first_request() -> None:
    # As gunicorn does in each worker: import the application, then count the loaded models.
    script = "import allpatents.wsgi; from search.embedding import load_model; print(load_model.cache_info().currsize)"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=os.environ, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "1"


def test_a_web_worker_whose_embedding_model_does_not_load_still_starts_and_says_why(tmp_path: Path) -> None:
    script = "import allpatents.wsgi; print(allpatents.wsgi.application is not None)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**os.environ, "EMBEDDING_MODEL": str(tmp_path)},  # a directory without a model in it
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "True"
    assert "The embedding model did not load; searches by meaning will try again." in result.stderr
