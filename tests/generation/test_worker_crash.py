"""A worker killed in the middle of a batch: the run completes, nothing lost, nothing published twice."""

import os
import signal
import time
from pathlib import Path

import pytest

from allpatents.celery import app
from generation.engine import DecodingParameters
from generation.models import Generation, GenerationRun, PromptMode
from generation.pipeline import BATCH_SIZE
from generation.runs import create_run
from search.models import Patent
from tests.conftest import start_worker, stop_worker

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
    parameters = DecodingParameters(temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0, max_new_tokens=1500)
    run = create_run(
        mode=PromptMode.BOTTOM_UP, model_name=str(tiny_generator), parameters=parameters, seed=5,
        requested_count=2 * BATCH_SIZE,
    )  # fmt: skip

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

    run.refresh_from_db()
    assert run.status == GenerationRun.Status.SUCCEEDED, run.error
    positions = list(Generation.objects.filter(run=run).order_by("position").values_list("position", flat=True))
    assert positions == list(range(2 * BATCH_SIZE))
    assert (run.generated_count, run.accepted_count + run.rejected_count) == (2 * BATCH_SIZE, 2 * BATCH_SIZE)
    assert Patent.objects.filter(generation_run=run).count() == run.accepted_count
    assert Generation.objects.filter(run=run, accepted=True).count() == run.accepted_count
