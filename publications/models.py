"""Daily manifests: the evidence that a day's documents were published, and with what text."""

from __future__ import annotations

from urllib.parse import urlsplit

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


class ManifestTimestamp(models.Model):
    """An RFC 3161 time stamp of one day's manifest hash by one time-stamping authority.

    `token` is the authority's whole TimeStampResp (DER), served as is at `get_absolute_url`
    so anyone can check it with `openssl ts -verify`. Until the authority answers, the row
    records the attempts and when the next one is due (exponential backoff).
    """

    manifest = models.ForeignKey(DailyManifest, on_delete=models.PROTECT, related_name="timestamps")
    authority = models.URLField(max_length=500)
    # The authority's name in the token's URL: its host and path, e.g. "freetsa.org-tsr".
    slug = models.SlugField(max_length=200)
    token = models.BinaryField(null=True, editable=False)
    stamped_at = models.DateTimeField(null=True, help_text="The time the authority put in the token (genTime).")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["manifest", "authority"]
        constraints = [
            models.UniqueConstraint(fields=["manifest", "authority"], name="one_timestamp_per_authority_and_day"),
            models.UniqueConstraint(fields=["manifest", "slug"], name="one_token_url_per_day"),
        ]

    def __str__(self) -> str:
        state = f"stamped {self.stamped_at:%Y-%m-%d %H:%M:%S}Z" if self.stamped_at else f"{self.attempts} attempt(s)"
        return f"{self.manifest_id} by {self.authority}: {state}"

    def get_absolute_url(self) -> str:
        return reverse("publications:timestamp", args=[self.manifest_id.isoformat(), self.slug])

    @property
    def authority_name(self) -> str:
        return urlsplit(self.authority).netloc


class OpenTimestampsProof(models.Model):
    """The day's OpenTimestamps proof (publications/ots.py): pending at its calendars, then in a Bitcoin block.

    `proof` is the detached .ots file served at `get_absolute_url`, so `ots verify` reads it as is.
    """

    manifest = models.OneToOneField(DailyManifest, primary_key=True, on_delete=models.PROTECT, related_name="ots")
    proof = models.BinaryField(null=True, editable=False)
    bitcoin_height = models.PositiveIntegerField(null=True, help_text="The first Bitcoin block that attests it.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        state = f"in Bitcoin block {self.bitcoin_height}" if self.bitcoin_height else "pending"
        return f"{self.manifest_id} OpenTimestamps: {state}"

    def get_absolute_url(self) -> str:
        return reverse("publications:ots_proof", args=[self.manifest_id.isoformat()])


class ArchiveCapture(models.Model):
    """A capture, by the Internet Archive's Save Page Now, of one of a day's evidence pages.

    Copies outside our control keep the evidence alive, and dated by someone else, if this site
    goes away: the day's manifest, its browse page and the sitemap (ARCHIVE_SNAPSHOTS=on).
    """

    manifest = models.ForeignKey(DailyManifest, on_delete=models.PROTECT, related_name="captures")
    page = models.URLField(max_length=500)
    job_id = models.CharField(max_length=200, blank=True)
    capture_url = models.URLField(max_length=1000, blank=True)
    captured_at = models.DateTimeField(null=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["manifest", "id"]
        constraints = [models.UniqueConstraint(fields=["manifest", "page"], name="one_capture_per_page_and_day")]

    def __str__(self) -> str:
        return f"{self.manifest_id}: {self.page} -> {self.capture_url or 'not captured yet'}"


class Mirror(models.Model):
    """This installation is a read-only copy of another one's record (`manage.py mirror SOURCE`).

    At most one row. While it exists the database refuses any document that is not a copy
    (migration search/0014), no manifest of its own is built, and every page names the origin.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    origin = models.URLField(max_length=500, help_text="The site whose record this is (its base URL).")
    source = models.CharField(max_length=1000, help_text="Where the days are copied from: a base URL or a folder.")
    started_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text="The last synchronisation that completed.")
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="one_mirror_per_installation")]

    def __str__(self) -> str:
        return f"copy of {self.origin}"

    @property
    def origin_name(self) -> str:
        return urlsplit(self.origin).netloc or self.origin
