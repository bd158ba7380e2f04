"""Generation runs: an admin's request to generate patents, and its accounting."""

from __future__ import annotations

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
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)

    generated_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    rejections = models.JSONField(default=dict, blank=True, help_text="Rejected outputs counted by reason.")
    tokens_generated = models.BigIntegerField(default=0)
    cpu_seconds = models.FloatField(default=0)
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
