"""Copies of each day's evidence in the Internet Archive (ARCHIVE_SNAPSHOTS=on; off by default).

Once a day's manifest is built, Save Page Now is asked to capture three pages: the manifest, the
day's browse page and the sitemap. Not every document: the Archive's published limits are per
account and minute, and the manifest already commits to every document's text. The capture URLs
are recorded on the day and shown on its page; a capture that fails is asked again later with
the same backoff as the time stamps. Requests are spaced ARCHIVE_REQUEST_INTERVAL seconds apart.

The API (SPN2): POST /save with `url=` answers a job id; GET /save/status/<job id> answers
`pending`, `error` or `success` with the capture's timestamp; the capture is then replayed at
/web/<timestamp>/<url> on the same host.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from publications import retries
from publications.models import ArchiveCapture, DailyManifest

logger = logging.getLogger(__name__)
POLL_SECONDS = 5


class ArchiveError(Exception):
    """Save Page Now refused, failed or did not finish a capture."""


def pages(day: datetime.date) -> list[str]:
    """The day's evidence pages, as the world reaches them."""
    return [
        f"{settings.SITE_URL}{path}"
        for path in (
            reverse("publications:manifest", args=[day.isoformat()]),
            reverse("publications:day", args=[day.year, day.month, day.day]),
            reverse("sitemap"),
        )
    ]


def _call(url: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if settings.ARCHIVE_ACCESS_KEY:
        headers["Authorization"] = f"LOW {settings.ARCHIVE_ACCESS_KEY}:{settings.ARCHIVE_SECRET_KEY}"
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=60) as answer:
            return json.loads(answer.read(1024 * 1024))
    except (urllib.error.URLError, OSError, ValueError) as error:  # refused, 429/5xx, timed out, not JSON
        raise ArchiveError(f"{url}: {error}") from error


def submit(page: str) -> str:
    """Ask for a capture of the page; its job id."""
    answer = _call(settings.ARCHIVE_SAVE_URL, {"url": page, "skip_first_archive": "1"})
    if not answer.get("job_id"):
        raise ArchiveError(f"no job id for {page}: {answer.get('message') or answer}")
    return str(answer["job_id"])


def wait(job_id: str) -> str:
    """The replay URL of the finished capture."""
    deadline = time.monotonic() + settings.ARCHIVE_CAPTURE_TIMEOUT
    while True:
        status = _call(f"{settings.ARCHIVE_SAVE_URL}/status/{urllib.parse.quote(job_id)}")
        if status.get("status") == "success":
            host = urllib.parse.urlsplit(settings.ARCHIVE_SAVE_URL)
            return f"{host.scheme}://{host.netloc}/web/{status['timestamp']}/{status['original_url']}"
        if status.get("status") != "pending":
            raise ArchiveError(f"capture {job_id} failed: {status.get('message') or status.get('status_ext')}")
        if time.monotonic() > deadline:
            raise ArchiveError(f"capture {job_id} still pending after {settings.ARCHIVE_CAPTURE_TIMEOUT} s")
        time.sleep(POLL_SECONDS)


def capture(day: datetime.date) -> list[ArchiveCapture]:
    """Capture each of the day's pages not captured yet; failures are recorded for a later attempt."""
    manifest = DailyManifest.objects.get(date=day)
    rows = []
    for number, page in enumerate(pages(day)):
        row, _ = ArchiveCapture.objects.get_or_create(manifest=manifest, page=page)
        rows.append(row)
        if row.capture_url:
            continue
        if number:
            time.sleep(settings.ARCHIVE_REQUEST_INTERVAL)  # the Archive's limits are per minute
        row.attempts += 1
        try:
            row.job_id = submit(page)
            row.capture_url = wait(row.job_id)
        except ArchiveError as error:
            row.last_error = str(error)[:2000]
            row.next_attempt_at = retries.next_attempt(row.attempts)
            logger.warning("Archive capture of %s failed (attempt %d): %s", page, row.attempts, error)
        else:
            row.captured_at, row.last_error, row.next_attempt_at = timezone.now(), "", None
        row.save()
    return rows


def due(now: datetime.datetime | None = None) -> list[datetime.date]:
    """Days with a page not captured yet whose next attempt is due, oldest first."""
    if not settings.ARCHIVE_SNAPSHOTS:
        return []
    now = now or timezone.now()
    waiting = ArchiveCapture.objects.filter(capture_url="", next_attempt_at__gt=now).values("manifest_id")
    days = []
    for manifest in DailyManifest.objects.exclude(date__in=waiting).order_by("date").prefetch_related("captures"):
        captured = {row.page for row in manifest.captures.all() if row.capture_url}
        if set(pages(manifest.date)) - captured:
            days.append(manifest.date)
    return days


def enqueue(days: list[datetime.date]) -> None:
    """Send each day's captures to a worker after the commit (never blocking publishing)."""
    from publications.tasks import capture_day  # the tasks module imports this one

    if settings.ARCHIVE_SNAPSHOTS:
        retries.send_after_commit(capture_day, [(day.isoformat(),) for day in days])
