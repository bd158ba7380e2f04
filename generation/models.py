"""Generation runs: an admin's request to generate patents, and its accounting; the contributors who help."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class PromptMode(models.TextChoices):
    TOP_DOWN = "top_down", "Top-down (title first)"
    BOTTOM_UP = "bottom_up", "Bottom-up (claims first)"
    SEEDED = "seeded", "Seeded (given titles or topics)"


class GenerationRunQuerySet(models.QuerySet["GenerationRun"]):
    def totals(self) -> dict[str, float | int | None]:
        """Hit rate and cost per published invention over these runs."""
        totals = self.aggregate(
            generated=models.Sum("generated_count", default=0),
            accepted=models.Sum("accepted_count", default=0),
            tokens=models.Sum("tokens_generated", default=0),
            cpu_seconds=models.Sum("cpu_seconds", default=0.0),
        )
        totals["hit_rate"] = totals["accepted"] / totals["generated"] if totals["generated"] else None
        totals["cpu_seconds_per_published"] = totals["cpu_seconds"] / totals["accepted"] if totals["accepted"] else None
        return totals


class GenerationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_runs"
    )
    mode = models.CharField(max_length=16, choices=PromptMode.choices)
    model_name = models.CharField(max_length=200)
    model_revision = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(
        default=dict, help_text="temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed"
    )
    seeds = models.JSONField(default=list, blank=True, help_text="Titles or topics of a seeded run.")
    requested_count = models.PositiveIntegerField()
    for_contributors = models.BooleanField(
        default=False, help_text="Handed out to outside contributors over /api/work, not to our own workers."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)

    generated_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    rejections = models.JSONField(default=dict, blank=True, help_text="Rejected outputs counted by reason.")
    tokens_generated = models.BigIntegerField(default=0)
    cpu_seconds = models.FloatField(default=0)
    verification_cpu_seconds = models.FloatField(
        default=0, help_text="Server CPU spent re-checking contributed outputs under the model (likelihood)."
    )
    wall_seconds = models.FloatField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.get_mode_display()}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING}

    def cancel(self) -> bool:
        """Stop the run: batches not started yet are skipped; one already sampling is still recorded.

        A conditional UPDATE, so a run that finished meanwhile is left as it is.
        """
        cancelled = GenerationRun.objects.filter(
            pk=self.pk, status__in=[self.Status.QUEUED, self.Status.RUNNING]
        ).update(status=self.Status.CANCELLED, finished_at=timezone.now())
        self.refresh_from_db(fields=["status", "finished_at"])
        return cancelled == 1

    @property
    def hit_rate(self) -> float | None:
        """Share of generated outputs good enough to publish."""
        return self.accepted_count / self.generated_count if self.generated_count else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.tokens_generated / self.wall_seconds if self.wall_seconds else None

    @property
    def eta_seconds(self) -> float | None:
        """Wall seconds left at the pace so far (batches run one after another)."""
        if not self.generated_count or not self.is_active:
            return None
        return (self.requested_count - self.generated_count) * self.wall_seconds / self.generated_count

    def progress(self) -> dict[str, object]:
        """What the run page shows, as JSON for its live updates."""
        return {
            "status": self.status,
            "requested": self.requested_count,
            "generated": self.generated_count,
            "accepted": self.accepted_count,
            "rejected": self.rejected_count,
            "rejections": self.rejections,
            "tokens": self.tokens_generated,
            "tokens_per_second": self.tokens_per_second,
            "eta_seconds": self.eta_seconds,
            "hit_rate": self.hit_rate,
            "cpu_seconds_per_published": self.cpu_seconds_per_published,
            "error": self.error,
        }

    @property
    def cpu_seconds_per_published(self) -> float | None:
        """The cost per published invention, in CPU-seconds."""
        return self.cpu_seconds / self.accepted_count if self.accepted_count else None


class Generation(models.Model):
    """One sampled output, accepted or not: rejected ones are kept for statistics and review.

    (run, batch, position) is unique, which is what makes a re-delivered batch
    task harmless: a batch that has rows was recorded, all of it, in one transaction.
    """

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="generations")
    batch = models.PositiveIntegerField()
    position = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    prompt = models.TextField()
    text = models.TextField()
    new_tokens = models.PositiveIntegerField()
    finished = models.BooleanField(help_text="Ended by the model, not cut at max_new_tokens.")
    accepted = models.BooleanField()
    reasons = models.JSONField(default=list, blank=True)
    quality_score = models.FloatField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "search.Patent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contributor = models.ForeignKey(
        "Contributor", null=True, blank=True, on_delete=models.PROTECT, related_name="generations"
    )
    likelihood = models.JSONField(
        null=True,
        blank=True,
        help_text="The server's teacher-forced score of a contributed output (tokens, outside, z).",
    )
    patent = models.OneToOneField(
        "search.Patent", null=True, blank=True, on_delete=models.PROTECT, related_name="generation"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "batch", "position"], name="generation_unique_position"),
        ]

    def __str__(self) -> str:
        return f"Run {self.run_id} batch {self.batch} #{self.position}"


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ContributorQuerySet(models.QuerySet["Contributor"]):
    def for_token(self, token: str) -> Contributor | None:
        """The contributor a bearer token belongs to; None for an unknown or revoked one."""
        return self.filter(token_digest=_token_digest(token), revoked_at__isnull=True).first()

    def with_totals(self) -> ContributorQuerySet:
        """Units returned, outputs, published inventions; counted from the records, so never out of step."""

        def count(rows: models.QuerySet) -> models.Subquery:
            counted = rows.filter(contributor=models.OuterRef("pk")).order_by().values("contributor")
            return models.Subquery(
                counted.annotate(n=models.Count("*")).values("n"), output_field=models.IntegerField()
            )

        return self.annotate(
            units=models.functions.Coalesce(count(WorkLease.objects.filter(returned_at__isnull=False)), 0),
            outputs=models.functions.Coalesce(count(Generation.objects.all()), 0),
            published=models.functions.Coalesce(count(Generation.objects.filter(patent__isnull=False)), 0),
        )

    def rejections(self) -> dict[int, dict[str, int]]:
        """Rejected outputs by reason, for each of these contributors."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT contributor_id, reason, count(*) FROM generation_generation,"
                " jsonb_array_elements_text(reasons) AS reason WHERE contributor_id = ANY(%s)"
                " GROUP BY contributor_id, reason ORDER BY contributor_id, count(*) DESC, reason",
                [list(self.values_list("pk", flat=True))],
            )
            totals: dict[int, dict[str, int]] = {}
            for contributor_id, reason, number in cursor.fetchall():
                totals.setdefault(contributor_id, {})[reason] = number
        return totals


class Contributor(models.Model):
    """Someone who generates on their own machine with a token staff issued. Only the token's digest is kept."""

    display_name = models.CharField(
        max_length=80, blank=True, help_text="Shown on the public contributions page; empty for anonymous."
    )
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False, help_text="The token's start, to tell tokens apart.")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    throttled_until = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)

    objects = ContributorQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.public_name} ({self.token_prefix}…)"

    @classmethod
    def issue(cls, *, display_name: str = "", issued_by: object = None) -> tuple[Contributor, str]:
        """A new contributor and their token, which is shown this once and never stored."""
        token = "apc_" + secrets.token_urlsafe(32)
        contributor = cls.objects.create(
            display_name=display_name.strip(),
            token_digest=_token_digest(token),
            token_prefix=token[:12],
            issued_by=issued_by,
        )
        return contributor, token

    @property
    def public_name(self) -> str:
        return self.display_name or "anonymous"

    @property
    def hit_rate(self) -> float | None:
        """Share of outputs published (with_totals() rows only)."""
        outputs = getattr(self, "outputs", 0)
        return getattr(self, "published", 0) / outputs if outputs else None

    @property
    def standing(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.suspended_at:
            return "suspended"
        if self.throttled_until and self.throttled_until > timezone.now():
            return "throttled"
        return "active"

    def revoke(self) -> None:
        self.revoked_at = self.revoked_at or timezone.now()
        self.save(update_fields=["revoked_at"])


class WorkLease(models.Model):
    """One batch of a contributors' run, lent to one contributor until `expires_at`.

    A lease is a promise not to hand the batch to anyone else meanwhile, nothing more: publishing
    exactly once rests on the batch's recorded rows (generation.pipeline.record_batch), so a late
    upload from an expired lease is recorded if the batch is still open and refused if it is not.
    """

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="leases")
    batch = models.PositiveIntegerField()
    contributor = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="leases")
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True, help_text="Given back unfinished (Ctrl-C).")
    returned_at = models.DateTimeField(null=True, blank=True, help_text="Results uploaded.")

    class Meta:
        ordering = ["issued_at"]
        indexes = [models.Index(fields=["run", "batch"])]

    def __str__(self) -> str:
        return f"Run {self.run_id} batch {self.batch} to {self.contributor}"

    @property
    def is_open(self) -> bool:
        return not self.released_at and not self.returned_at and self.expires_at > timezone.now()
