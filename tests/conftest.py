"""Shared fixtures: real PostgreSQL + pgvector, a real broker, real worker processes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from allpatents.celery import READY_FILE_VARIABLE, worker_command
from search.importing import import_patents
from search.models import Patent

BASE_DIR = Path(__file__).resolve().parent.parent
SAMPLE = BASE_DIR / "tests" / "data" / "patents.jsonl"


@pytest.fixture(autouse=True)
def _empty_caches() -> None:
    """Rendered pages and rate counters of one test never answer another's requests."""
    from django.core.cache import caches

    caches["pages"].clear()
    caches["default"].clear()


@pytest.fixture
def imported(db: None) -> dict[str, Patent]:
    """The five real patents of tests/data/patents.jsonl, imported; keyed by publication number."""
    import_patents(SAMPLE)
    return {patent.source_id: patent for patent in Patent.objects.all() if patent.source_id}


def database_url_for_processes() -> str:
    """A DATABASE_URL naming the test database, for processes the tests start."""
    db = connection.settings_dict
    host = quote(db["HOST"], safe="")
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}"


def service_environment() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_processes(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "allpatents.settings",
    }


def start_worker(name: str, *options: str, **environment: str) -> subprocess.Popen[bytes]:
    """A real `celery worker` process on the test broker and test database; returns once it consumes.

    Readiness is the worker's ready file, not a ping: a solo pool that took a task at once can't
    answer a ping until the task ends.
    """
    log = open(Path(settings.VAR_DIR) / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
    ready = Path(settings.VAR_DIR) / f"{name}.ready"
    ready.unlink(missing_ok=True)
    worker = subprocess.Popen(
        worker_command("--pool", "solo", "--without-gossip", "--without-mingle", "-n", f"{name}@%h", *options),
        cwd=BASE_DIR,
        env={**service_environment(), READY_FILE_VARIABLE: str(ready), **environment},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120  # a loaded 2-core machine can take a minute
    while not ready.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"The Celery worker did not start; see {log.name}")
        time.sleep(0.2)
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process consuming the test broker and writing the test database."""
    from allpatents.celery import app

    app.control.purge()
    worker = start_worker("celery-worker")
    yield worker
    stop_worker(worker)


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generator trained in seconds on five real patents: real, small, and mostly wrong."""
    from generation.training import TrainingConfig, train_generator

    output = tmp_path_factory.mktemp("models") / "tiny"
    config = TrainingConfig(
        warm_start=None,
        hidden_size=32,
        layers=1,
        heads=2,
        block_size=512,
        batch_size=4,
        learning_rate=2e-3,
        max_steps=20,
    )
    train_generator(output, config, corpora=[SAMPLE])
    return output
