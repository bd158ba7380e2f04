"""Celery tasks of the patent store: thin wrappers around search.indexing."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from search import indexing


@shared_task(
    name="search.embed_patents",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def embed_patents_task(*, patent_ids: list[int]) -> int:
    return indexing.embed_patents(patent_ids)
