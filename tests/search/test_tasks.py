"""Celery tasks run in a real worker process, through the real broker."""

import subprocess

import pytest

from search.models import Patent
from search.tasks import embed_patents_task

pytestmark = pytest.mark.slow


def test_embed_task_sent_through_the_broker_is_run_by_a_worker_process(
    celery_worker_process: subprocess.Popen[bytes], imported: dict[str, Patent]
) -> None:
    truck = imported["US11147202B2"]
    expected = list(truck.embedding)
    Patent.objects.filter(pk=truck.pk).update(embedding=None)

    result = embed_patents_task.delay(patent_ids=[truck.pk])

    assert result.get(timeout=120) == 1
    truck.refresh_from_db()
    assert truck.embedding is not None
    assert list(truck.embedding) == pytest.approx(expected, abs=1e-5)
