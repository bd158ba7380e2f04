"""Work for outside contributors: batches of a contributors' run leased over HTTPS, results checked here.

Plain functions; generation/contributor_api.py serves them. A contributor's machine samples; the
server trusts none of it: prompts and seeds are the server's, every gate and the novelty check run
here, and a text that passes them must also score, under the model the unit named, like a sample
at the unit's parameters (generation/likelihood.py) before it is published. Publishing exactly
once is record_batch's rule, the same as for our own workers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from generation.checking import Rejection
from generation.codecs import TextCodec
from generation.engine import DecodingParameters, Request
from generation.likelihood import LikelihoodScore, score_sample
from generation.llm import BUNDLED_GENERATOR, Generator, Sample, load_generator, storable_text
from generation.models import Contributor, Generation, GenerationRun, WorkLease
from generation.pipeline import BATCH_SIZE, SampledBatch, batch_count, batch_requests, decoding_parameters, record_batch

# A contributor whose recent checked outputs fail the likelihood check this often is throttled, then
# suspended: an honest client running the named model fails it about one time in a hundred.
RECENT_CHECKED = 50
THROTTLE_SHARE, THROTTLE_MINIMUM = 0.2, 5
SUSPEND_SHARE, SUSPEND_MINIMUM = 0.5, 20
THROTTLE_FOR = timedelta(hours=1)
# The largest output accepted: the longest bundled patent is about 60,000 characters.
MAX_TEXT_CHARACTERS = 100_000
CHECKS_RERUN = ["gates", "novelty", "likelihood"]


class WorkRefused(Exception):
    """A request this contributor may not make now; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def model_reference(run: GenerationRun) -> dict[str, object]:
    """The exact model a unit must be sampled with: a hub id at a revision, or the bundled weights' hash."""
    generator = load_generator(run.model_name)
    bundled = run.model_name == str(BUNDLED_GENERATOR)
    return {"name": "bundled" if bundled else run.model_name, "revision": generator.revision, "bundled": bundled}


def ensure_allowed(contributor: Contributor) -> None:
    now = timezone.now()
    if contributor.suspended_at:
        raise WorkRefused(403, "This token is suspended: too many uploads failed the server's checks.")
    if contributor.throttled_until and contributor.throttled_until > now:
        wait = int((contributor.throttled_until - now).total_seconds()) + 1
        raise WorkRefused(429, f"Too many recent uploads failed the likelihood check; try again in {wait} s.", wait)


def lease_unit(contributor: Contributor) -> WorkLease | None:
    """The oldest open batch of a contributors' run that nobody holds, leased to `contributor`; None if none."""
    ensure_allowed(contributor)
    now = timezone.now()
    open_runs = GenerationRun.objects.filter(
        for_contributors=True, status__in=[GenerationRun.Status.QUEUED, GenerationRun.Status.RUNNING]
    ).order_by("created_at")
    for run_id in open_runs.values_list("pk", flat=True):
        with transaction.atomic():
            # The run's row lock serialises leasing against other leases and against recording.
            run = GenerationRun.objects.select_for_update().get(pk=run_id)
            if not run.is_active:
                continue
            recorded = set(run.generations.values_list("batch", flat=True).distinct())
            held = set(
                run.leases.filter(released_at=None, returned_at=None, expires_at__gt=now).values_list(
                    "batch", flat=True
                )
            )
            free = next((b for b in range(batch_count(run)) if b not in recorded | held), None)
            if free is None:
                continue
            if run.status == GenerationRun.Status.QUEUED:
                run.status, run.started_at = GenerationRun.Status.RUNNING, now
                run.save(update_fields=["status", "started_at"])
            return WorkLease.objects.create(
                run=run,
                batch=free,
                contributor=contributor,
                expires_at=now + timedelta(seconds=settings.WORK_LEASE_SECONDS),
            )
    return None


def retry_after(*, longest: int = 30) -> int:
    """Seconds a contributor with no work should wait: until the next held lease expires, at most `longest`."""
    next_expiry = (
        WorkLease.objects.filter(released_at=None, returned_at=None, expires_at__gt=timezone.now())
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )
    if next_expiry is None:
        return longest
    return max(1, min(longest, int((next_expiry - timezone.now()).total_seconds()) + 1))


def unit(lease: WorkLease) -> dict[str, object]:
    """What a contributor needs to sample a leased batch, and nothing it could choose itself."""
    run = lease.run
    return {
        "id": lease.pk,
        "run": run.pk,
        "batch": lease.batch,
        "expires_at": lease.expires_at.isoformat(),
        "model": model_reference(run),
        "parameters": decoding_parameters(run).as_dict(),
        "outputs": [
            {"position": lease.batch * BATCH_SIZE + index, "prompt": request.prompt, "seed": request.seed}
            for index, request in enumerate(batch_requests(run, lease.batch))
        ],
    }


def release(lease: WorkLease) -> None:
    """Give a leased unit back unfinished (a contributor stopping): it goes to the next who asks."""
    if lease.returned_at:
        raise WorkRefused(409, "This unit's results were already uploaded.")
    WorkLease.objects.filter(pk=lease.pk, released_at=None).update(released_at=timezone.now())


@dataclass(frozen=True)
class Upload:
    position: int
    text: str
    new_tokens: int
    finished: bool
    aborted: str | None = None
    tokens: list[int] | None = None  # the continuation's ids as drawn; scored as they are if they decode to text


@dataclass
class ContributedBatch:
    """record_batch's Provenance for one upload: the contributor, and scoring under the run's model."""

    contributor: Contributor
    generator: Generator
    parameters: DecodingParameters
    prompts: list[str]
    texts: list[str]
    tokens: list[list[int] | None]
    int8: bool = True  # the weights the contributor sampled with: the engine's int8 on a CPU, fp32 on a GPU
    checks_rerun: list[str] = field(default_factory=lambda: list(CHECKS_RERUN))
    cpu_seconds: float = 0.0

    def score(self, index: int) -> LikelihoodScore:
        started = time.process_time()
        result = score_sample(
            self.generator,
            self.prompts[index],
            self.texts[index],
            self.parameters,
            int8=self.int8,
            tokens=self.tokens[index],
        )
        self.cpu_seconds += time.process_time() - started
        return result


@dataclass(frozen=True)
class Outcome:
    recorded: int
    published: list[str]
    rejections: dict[str, int]
    verification_cpu_seconds: float


def _validated(
    batch: int, requests: Sequence[Request], uploads: Sequence[Upload], codec: TextCodec, limit: int
) -> list[Upload]:
    """The uploads in position order, one for each of the unit's requests, each consistent with its request."""
    first = batch * BATCH_SIZE
    expected = list(range(first, first + len(requests)))
    by_position = {upload.position: upload for upload in uploads}
    if sorted(by_position) != expected or len(by_position) != len(uploads):
        raise WorkRefused(422, f"outputs: expected one for each position {expected[0]}-{expected[-1]}, once")
    for position, request in zip(expected, requests, strict=True):
        upload = by_position[position]
        if not upload.text.startswith(request.prompt):
            raise WorkRefused(422, f"outputs[{position}].text: does not start with the unit's prompt")
        if len(upload.text) > MAX_TEXT_CHARACTERS:
            raise WorkRefused(422, f"outputs[{position}].text: longer than {MAX_TEXT_CHARACTERS} characters")
        if not 0 <= upload.new_tokens <= limit:
            raise WorkRefused(422, f"outputs[{position}].new_tokens: not between 0 and {limit}")
        if upload.aborted is not None and upload.aborted not in set(Rejection):
            raise WorkRefused(422, f"outputs[{position}].aborted: {upload.aborted!r} is not a gate")
        if upload.tokens is not None:
            _check_tokens(codec, request.prompt, upload, position, limit)
    return [by_position[position] for position in expected]


def _check_tokens(codec: TextCodec, prompt: str, upload: Upload, position: int, limit: int) -> None:
    """Uploaded token ids are scored as they are, so they must be exactly the text's."""
    assert upload.tokens is not None
    if len(upload.tokens) > limit or not all(0 <= token < codec.vocabulary_size for token in upload.tokens):
        raise WorkRefused(422, f"outputs[{position}].tokens: at most {limit} ids of the model's vocabulary")
    ids = [*codec.encode_prompt(prompt), *(token for token in upload.tokens if token != codec.eos_token_id)]
    if storable_text(codec.decode(ids)) != storable_text(upload.text):
        raise WorkRefused(422, f"outputs[{position}].tokens: do not decode to the text")


def accept_results(
    lease: WorkLease, uploads: Sequence[Upload], *, cpu_seconds: float, wall_seconds: float, int8: bool = True
) -> Outcome:
    """Check a leased unit's outputs here and record them, publishing what passes; refused if the unit is done."""
    ensure_allowed(lease.contributor)
    if lease.returned_at:
        raise WorkRefused(409, "This unit's results were already uploaded.")
    if lease.released_at:
        raise WorkRefused(409, "This unit was given back; lease a new one.")
    run = lease.run
    if run.generations.filter(batch=lease.batch).exists():
        raise WorkRefused(409, "This unit was completed by someone else after its lease expired.")
    if not run.is_active:
        raise WorkRefused(409, f"Run {run.pk} is {run.status}; nothing more is recorded for it.")
    generator = load_generator(run.model_name)
    parameters = decoding_parameters(run)
    requests = batch_requests(run, lease.batch)
    ordered = _validated(lease.batch, requests, uploads, generator.codec, parameters.max_new_tokens)
    texts = [storable_text(upload.text) for upload in ordered]
    contributed = ContributedBatch(
        lease.contributor,
        generator,
        parameters,
        [r.prompt for r in requests],
        texts,
        [u.tokens for u in ordered],
        int8=int8,
    )
    sampled = SampledBatch(
        prompts=contributed.prompts,
        seeds=[r.seed for r in requests],
        samples=[
            Sample(text, new_tokens=upload.new_tokens, finished=upload.finished, aborted=upload.aborted)
            for text, upload in zip(texts, ordered, strict=True)
        ],
        model_revision=generator.revision,
        cpu_seconds=max(0.0, min(cpu_seconds, 86_400.0)),
        wall_seconds=max(0.0, min(wall_seconds, 86_400.0)),
        holds_outputs=generator.holds_outputs,
    )
    if not record_batch(run, lease.batch, sampled, contributed=contributed):
        raise WorkRefused(409, "This unit was completed by someone else after its lease expired.")
    now = timezone.now()
    WorkLease.objects.filter(pk=lease.pk).update(returned_at=now)
    GenerationRun.objects.filter(pk=run.pk).update(
        verification_cpu_seconds=F("verification_cpu_seconds") + contributed.cpu_seconds
    )
    _review(lease.contributor)
    rows = list(run.generations.filter(batch=lease.batch).select_related("patent"))
    rejections: dict[str, int] = {}
    for row in rows:
        for reason in row.reasons:
            rejections[reason] = rejections.get(reason, 0) + 1
    return Outcome(
        recorded=len(rows),
        published=[row.patent.public_id for row in rows if row.patent],
        rejections=rejections,
        verification_cpu_seconds=contributed.cpu_seconds,
    )


def _review(contributor: Contributor) -> None:
    """Throttle, then suspend, a contributor whose recent checked outputs fail the likelihood check."""
    recent = list(
        Generation.objects.filter(contributor=contributor, likelihood__isnull=False)
        .order_by("-created_at")
        .values_list("reasons", flat=True)[:RECENT_CHECKED]
    )
    if not recent:
        return
    failed = sum(Rejection.IMPLAUSIBLE_LIKELIHOOD in reasons for reasons in recent)
    share = failed / len(recent)
    if failed >= SUSPEND_MINIMUM and share >= SUSPEND_SHARE:
        Contributor.objects.filter(pk=contributor.pk, suspended_at=None).update(suspended_at=timezone.now())
    elif failed >= THROTTLE_MINIMUM and share >= THROTTLE_SHARE:
        Contributor.objects.filter(pk=contributor.pk).filter(
            Q(throttled_until=None) | Q(throttled_until__lt=timezone.now())
        ).update(throttled_until=timezone.now() + THROTTLE_FOR)
