"""Celery tasks of generation: thin wrappers around generation.pipeline (queue "generation")."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from generation import pipeline


@shared_task(name="generation.generate_batch", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def generate_batch_task(*, run_id: int, batch: int) -> None:
    pipeline.run_batch(run_id=run_id, batch=batch)
