"""Faults in the middle of a run (a worker killed, PostgreSQL away, the broker restarted): the run
completes, every position recorded once, nothing lost, nothing published twice."""

import os
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings

from allpatents.celery import app
from generation.engine import DecodingParameters
from generation.models import Generation, GenerationRun, PromptMode
from generation.pipeline import BATCH_SIZE
from generation.runs import create_run
from search.models import Patent
from tests.conftest import start_worker, stop_worker
from tests.faults import FlakyDatabaseLink, restart_test_broker

pytestmark = pytest.mark.slow


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_kill_9_mid_batch_then_restart_completes_the_run_exactly_once(
    transactional_db: None, tiny_generator: Path
) -> None:
    app.control.purge()
    # Unacknowledged tasks of a dead worker come back after the visibility timeout: short here.
    environment = {"CELERY_VISIBILITY_TIMEOUT": "5"}
    first = start_worker("doomed-worker", **environment)
    run = start_run(tiny_generator)

    wait_for(lambda: GenerationRun.objects.get(pk=run.pk).status == GenerationRun.Status.RUNNING, timeout=60)
    time.sleep(2)  # the model is loaded and the first batch is being sampled
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert Generation.objects.filter(run=run).count() == 0  # killed before the batch was recorded

    second = start_worker("restarted-worker", **environment)
    try:
        wait_for(lambda: not GenerationRun.objects.get(pk=run.pk).is_active, timeout=300)
    finally:
        stop_worker(second)

    assert_completed_exactly_once(run)


def assert_completed_exactly_once(run: GenerationRun) -> None:
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.SUCCEEDED, run.error
    count = run.requested_count
    positions = list(Generation.objects.filter(run=run).order_by("position").values_list("position", flat=True))
    assert positions == list(range(count))
    assert (run.generated_count, run.accepted_count + run.rejected_count) == (count, count)
    assert Patent.objects.filter(generation_run=run).count() == run.accepted_count
    assert Generation.objects.filter(run=run, accepted=True).count() == run.accepted_count


def start_run(model: Path, batches: int = 2) -> GenerationRun:
    parameters = DecodingParameters(temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0, max_new_tokens=1500)
    return create_run(
        mode=PromptMode.BOTTOM_UP, model_name=str(model), parameters=parameters, seed=5,
        requested_count=batches * BATCH_SIZE,
    )  # fmt: skip


def first_batch_recorded(run: GenerationRun) -> bool:
    return Generation.objects.filter(run=run).exists()


def test_postgres_away_in_the_middle_of_a_run_then_back_completes_the_run_exactly_once(
    transactional_db: None, tiny_generator: Path
) -> None:
    app.control.purge()
    link = FlakyDatabaseLink.to_test_database()
    log = Path(settings.VAR_DIR) / "flaky-database-worker.log"
    log.unlink(missing_ok=True)
    worker = start_worker("flaky-database-worker", "--loglevel", "INFO", DATABASE_URL=link.database_url)
    try:
        run = start_run(tiny_generator, batches=4)
        wait_for(lambda: first_batch_recorded(run), timeout=120)
        link.shut()  # mid-run: every connection of the worker drops, new ones are refused
        time.sleep(6)
        link.reopen()
        wait_for(lambda: not GenerationRun.objects.get(pk=run.pk).is_active, timeout=300)
    finally:
        stop_worker(worker)
        link.close()

    assert_completed_exactly_once(run)
    assert "retry: Retry in" in log.read_text()  # the outage was felt, and retried past


def test_the_broker_restarted_in_the_middle_of_a_run_completes_the_run_exactly_once(
    transactional_db: None, tiny_generator: Path
) -> None:
    app.control.purge()
    worker = start_worker("broker-restart-worker", CELERY_VISIBILITY_TIMEOUT="5")
    try:
        run = start_run(tiny_generator, batches=4)
        wait_for(lambda: first_batch_recorded(run), timeout=120)
        restart_test_broker(down_for=3)  # later batches still queued, one unacknowledged
        assert Generation.objects.filter(run=run).count() < run.requested_count  # it did fall mid-run
        wait_for(lambda: not GenerationRun.objects.get(pk=run.pk).is_active, timeout=300)
    finally:
        stop_worker(worker)

    assert_completed_exactly_once(run)
