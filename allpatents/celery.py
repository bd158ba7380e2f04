"""The Celery app. Workers start with `celery -A allpatents worker -Q default,generation`."""

import os
import sys
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allpatents.settings")

app = Celery("allpatents")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Generation batches are slow and go to their own queue (see CELERY_TASK_ROUTES).
QUEUES = ("default", "generation")

# A worker with this variable set creates the file once it consumes and removes it when it stops:
# a readiness probe that a busy solo pool (which can't answer a ping mid-batch) still passes.
READY_FILE_VARIABLE = "CELERY_WORKER_READY_FILE"


@worker_ready.connect
def _mark_ready(**kwargs: Any) -> None:
    if path := os.environ.get(READY_FILE_VARIABLE):
        Path(path).touch()


@worker_shutdown.connect
def _unmark_ready(**kwargs: Any) -> None:
    if path := os.environ.get(READY_FILE_VARIABLE):
        Path(path).unlink(missing_ok=True)


def worker_command(*options: str, queues: tuple[str, ...] = QUEUES) -> list[str]:
    """The command line of a worker process for these queues, with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "allpatents", "worker", "-Q", ",".join(queues), *options]
