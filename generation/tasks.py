"""Celery tasks of generation: thin wrappers around generation.pipeline (queue "generation")."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from generation import pipeline


# A database that is away (a restart, a failover) is waited for, with backoff, for about eight minutes:
# 1, 2, 4 ... 120 s between tries.
@shared_task(
    name="generation.generate_batch",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=120,
    max_retries=10,
)
def generate_batch_task(*, run_id: int, batch: int) -> None:
    pipeline.run_batch(run_id=run_id, batch=batch)
