"""The Celery app. Workers start with `celery -A allpatents worker -Q default,embedding,generation`."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allpatents.settings")

app = Celery("allpatents")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Generation batches are slow and go to their own queue (see CELERY_TASK_ROUTES).
QUEUES = ("default", "embedding", "generation")


def worker_command(*options: str, queues: tuple[str, ...] = QUEUES) -> list[str]:
    """The command line of a worker process for these queues, with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "allpatents", "worker", "-Q", ",".join(queues), *options]
