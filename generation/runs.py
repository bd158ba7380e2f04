"""Starting a generation run: the one function the staff pages and `manage.py generate` share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from generation.engine import DecodingParameters
from generation.models import GenerationRun, PromptMode
from generation.pipeline import batch_count
from generation.tasks import generate_batch_task


def create_run(
    *,
    mode: PromptMode | str,
    model_name: str,
    parameters: DecodingParameters,
    seed: int,
    requested_count: int,
    seeds: Sequence[str] = (),
    started_by: Any = None,
    queue: bool = True,
    for_contributors: bool = False,
) -> GenerationRun:
    """A new run, its batches queued for the workers once it is committed (unless `queue` is False:
    the caller runs them itself, or `for_contributors`: outside contributors lease them over /api/work)."""
    with transaction.atomic():
        run = GenerationRun.objects.create(
            mode=mode,
            model_name=model_name,
            parameters={**parameters.as_dict(), "seed": seed},
            seeds=list(seeds),
            requested_count=requested_count,
            started_by=started_by,
            for_contributors=for_contributors,
        )
        if queue and not for_contributors:
            for batch in range(batch_count(run)):
                transaction.on_commit(lambda batch=batch: generate_batch_task.delay(run_id=run.pk, batch=batch))
    return run
