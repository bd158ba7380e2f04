"""Daily manifests: the evidence that a day's documents were published, and with what text."""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class DailyManifest(models.Model):
    """One UTC day's publications: ids and text hashes, their Merkle root, chained to the previous day.

    `manifest` is the exact JSON published at the manifest's URL;
    `manifest_sha256` is its hash, which the next day's manifest repeats.
    """

    date = models.DateField(primary_key=True)
    count = models.PositiveIntegerField()
    merkle_root = models.CharField(max_length=64)
    previous_root = models.CharField(max_length=64, blank=True)
    manifest = models.TextField()
    manifest_sha256 = models.CharField(max_length=64)
    dump_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date} ({self.count} documents, root {self.merkle_root[:12]}…)"

    def get_absolute_url(self) -> str:
        return reverse("publications:manifest", args=[self.date.isoformat()])
