"""A generation run, batch by batch: sample, check, de-duplicate, publish.

Plain functions; generation/tasks.py wraps them for Celery, and generation/runs.py
creates runs. Each batch is
recorded in one transaction, and a batch that is already recorded is skipped,
so a task delivered twice (a worker killed mid-batch, acks_late) never
publishes twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from generation.checking import ParsedPatent, Rejection, Verdict, check_patent
from generation.likelihood import LikelihoodScore
from generation.llm import (
    BOTTOM_UP_PROMPT,
    TOP_DOWN_PROMPT,
    DecodingParameters,
    Request,
    Sample,
    load_generator,
    sample,
)
from generation.models import Contributor, Generation, GenerationRun, PromptMode
from search.embedding import DocumentText, DocumentVectors, embed_passages
from search.indexing import find_copy
from search.models import Origin, Patent
from search.publishing import NewDocument, publish
from search.searching import Filters, nearest_documents

logger = logging.getLogger(__name__)

# Outputs per Celery task: enough to keep the engine's slots full while sequences
# finish at different lengths, few enough that a worker killed mid-batch loses little.
BATCH_SIZE = 32
# The reason recorded for an output that passed every gate and the novelty check but came from a
# demonstration generator (llm.HOLD_ATTRIBUTE): kept in the run's record, never published.
HELD = "held"
# Cosine similarity above which a new text counts as a copy of a stored one
# (training data reproduced, or a generated document published twice).
NEAR_DUPLICATE_SIMILARITY = 0.95


@dataclass(frozen=True)
class SampledBatch:
    prompts: list[str]
    seeds: list[int]
    samples: list[Sample]
    model_revision: str
    cpu_seconds: float
    wall_seconds: float
    holds_outputs: bool = False  # a demonstration generator's: good outputs are held, not published


def batch_count(run: GenerationRun) -> int:
    return math.ceil(run.requested_count / BATCH_SIZE)


def prompt_for(run: GenerationRun, position: int) -> str:
    if run.mode == PromptMode.TOP_DOWN:
        return TOP_DOWN_PROMPT
    if run.mode == PromptMode.BOTTOM_UP:
        return BOTTOM_UP_PROMPT
    seed_text = run.seeds[position % len(run.seeds)]
    return f"{TOP_DOWN_PROMPT}\n{seed_text}"


def batch_requests(run: GenerationRun, batch: int) -> list[Request]:
    """The prompt and seed of each output of a batch, in position order."""
    first = batch * BATCH_SIZE
    positions = range(first, min(first + BATCH_SIZE, run.requested_count))
    # Every output has its own seed, derived from the run's: reproducible one by one.
    run_seed = int(run.parameters.get("seed", run.pk))
    return [Request(prompt_for(run, position), seed=run_seed * 1_000_003 + position) for position in positions]


def decoding_parameters(run: GenerationRun) -> DecodingParameters:
    return DecodingParameters(**{k: v for k, v in run.parameters.items() if k != "seed"})


def sample_batch(run: GenerationRun, batch: int) -> SampledBatch:
    requests = batch_requests(run, batch)
    parameters = decoding_parameters(run)
    generator = load_generator(run.model_name)
    cpu, wall = time.process_time(), time.monotonic()
    samples = sample(generator, requests, parameters)
    return SampledBatch(
        prompts=[request.prompt for request in requests],
        seeds=[request.seed for request in requests],
        samples=samples,
        model_revision=generator.revision,
        cpu_seconds=time.process_time() - cpu,
        wall_seconds=time.monotonic() - wall,
        holds_outputs=generator.holds_outputs,
    )


@dataclass(frozen=True)
class Novelty:
    reason: str | None  # "near_duplicate", "copied_text", or None for a new text
    duplicate_id: int | None = None


def check_novelty(parsed: ParsedPatent, vector: Sequence[float], *, exclude: int | None = None) -> Novelty:
    """Whether the text is new against everything stored: close in meaning to a stored document, or sharing
    its word 5-grams. The nearest neighbour comes through search's own tuned path (its ef_search): a
    novelty check that misses neighbours lets copies through."""
    nearest = nearest_documents(vector, Filters(), depth=1, exclude=exclude)
    if nearest and nearest[0][1] >= NEAR_DUPLICATE_SIMILARITY:
        return Novelty("near_duplicate", nearest[0][0])
    if copy := find_copy(parsed.title, parsed.abstract, parsed.claims, exclude=exclude):
        return Novelty("copied_text", copy.patent.pk)
    return Novelty(None)


class Provenance(Protocol):
    """What a contributed batch adds: who generated it, and the server's own check that the model did."""

    contributor: Contributor
    checks_rerun: list[str]

    def score(self, index: int) -> LikelihoodScore: ...


def record_batch(
    run: GenerationRun, batch: int, sampled: SampledBatch, *, contributed: Provenance | None = None
) -> bool:
    """Check every sample, publish the good, new ones and record all of them, in one transaction.

    False when the batch was already recorded (a repeated task, a second upload): nothing changes.
    """
    verdicts: list[Verdict] = [
        # An output stopped by early abort already failed a gate: it is counted under that gate.
        Verdict(reasons=[Rejection(s.aborted)]) if s.aborted else check_patent(s.text, finished=s.finished)
        for s in sampled.samples
    ]
    # A contributed text that passed every gate is scored under the model before anything else:
    # only texts the named model plausibly sampled go on (the cheap gates first keep this rare).
    scores: dict[int, LikelihoodScore] = {}
    if contributed:
        for index, verdict in enumerate(verdicts):
            if verdict.accepted and verdict.parsed:
                scores[index] = contributed.score(index)
                if not scores[index].plausible:
                    verdict.reasons.append(Rejection.IMPLAUSIBLE_LIKELIHOOD)
    good = [verdict for verdict in verdicts if verdict.accepted and verdict.parsed]
    vectors = dict(
        zip(
            map(id, good),
            embed_passages([DocumentText(v.parsed.title, v.parsed.abstract, v.parsed.claims) for v in good]),
            strict=True,
        )
    )
    with transaction.atomic():
        locked = GenerationRun.objects.select_for_update().get(pk=run.pk)
        if locked.generations.filter(batch=batch).exists():
            logger.info("Run %s batch %s is already recorded; skipping the repeat.", run.pk, batch)
            return False
        accepted, rejections = 0, dict(locked.rejections)
        first = batch * BATCH_SIZE
        for offset, (prompt, seed, output, verdict) in enumerate(
            zip(sampled.prompts, sampled.seeds, sampled.samples, verdicts, strict=True)
        ):
            reasons = [str(reason) for reason in verdict.reasons]
            duplicate: int | None = None
            patent: Patent | None = None
            if verdict.accepted and verdict.parsed:
                vector = vectors[id(verdict)]
                novelty = check_novelty(verdict.parsed, vector.mean)
                if novelty.reason:
                    reasons.append(novelty.reason)
                    duplicate = novelty.duplicate_id
                elif sampled.holds_outputs:
                    reasons.append(HELD)
                else:
                    patent = _publish(
                        run, verdict, vector, seed=seed, model_revision=sampled.model_revision, contributed=contributed
                    )
                    accepted += 1
            for reason in reasons:
                rejections[reason] = rejections.get(reason, 0) + 1
            Generation.objects.create(
                run=run, batch=batch, position=first + offset, seed=seed, prompt=prompt, text=output.text,
                new_tokens=output.new_tokens, finished=output.finished, accepted=patent is not None,
                reasons=reasons, quality_score=verdict.score or None, duplicate_of_id=duplicate, patent=patent,
                contributor=contributed.contributor if contributed else None,
                likelihood=scores[offset].as_dict() if offset in scores else None,
            )  # fmt: skip
        count = len(sampled.samples)
        GenerationRun.objects.filter(pk=run.pk).update(
            generated_count=F("generated_count") + count,
            accepted_count=F("accepted_count") + accepted,
            rejected_count=F("rejected_count") + count - accepted,
            rejections=rejections,
            tokens_generated=F("tokens_generated") + sum(s.new_tokens for s in sampled.samples),
            cpu_seconds=F("cpu_seconds") + sampled.cpu_seconds,
            wall_seconds=F("wall_seconds") + sampled.wall_seconds,
            model_revision=sampled.model_revision,
        )
        recorded = locked.generations.values("batch").distinct().count()
        if recorded == batch_count(locked):
            GenerationRun.objects.filter(pk=run.pk, status=GenerationRun.Status.RUNNING).update(
                status=GenerationRun.Status.SUCCEEDED, finished_at=timezone.now()
            )
    return True


def _publish(
    run: GenerationRun,
    verdict: Verdict,
    vectors: DocumentVectors,
    *,
    seed: int,
    model_revision: str,
    contributed: Provenance | None,
) -> Patent:
    parsed = verdict.parsed
    assert parsed is not None
    provenance = {
        "generation_run": run,
        "model_name": run.model_name,
        "model_revision": model_revision,
        "prompt_mode": run.mode,
        "decoding": run.parameters,
        "seed": seed,
        "generated_at": timezone.now(),
        "quality_score": verdict.score,
        "quality_flags": ["trimmed"] if verdict.trimmed else [],
        "contributed_by": contributed.contributor.public_name if contributed else "",
        "checks_rerun": contributed.checks_rerun if contributed else [],
    }
    document = NewDocument(
        parsed.title, parsed.abstract, parsed.claims, Origin.GENERATED, vectors.mean, provenance, vectors.passages
    )
    return publish([document])[0]


def run_batch(*, run_id: int, batch: int) -> None:
    """Generate, check and record one batch of a run, unless it is done or the run has stopped."""
    run = GenerationRun.objects.filter(pk=run_id).first()
    if run is None or run.status in {GenerationRun.Status.CANCELLED, GenerationRun.Status.FAILED}:
        return
    if run.generations.filter(batch=batch).exists():
        return
    GenerationRun.objects.filter(pk=run.pk, status=GenerationRun.Status.QUEUED).update(
        status=GenerationRun.Status.RUNNING, started_at=timezone.now()
    )
    try:
        record_batch(run, batch, sample_batch(run, batch))
    except OperationalError:
        raise  # the database is away: the task retries
    except Exception as error:  # a model that can't be loaded, a bug: the run fails and says why
        GenerationRun.objects.filter(pk=run.pk).update(
            status=GenerationRun.Status.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
        raise
