"""The production web server's application module."""

from __future__ import annotations

import os
import subprocess
import sys

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
