"""RFC 3161 time stamps on each day's manifest: third-party evidence of when it existed.

Our hash chain proves that no day was rewritten after the next one was built, but
only a party outside our control can date it. Each authority in TSA_URLS is asked
to stamp the SHA-256 of a day's manifest as soon as the manifest is built (a task
enqueued after the commit, so publishing never waits on an authority). A failure
or a timeout is recorded on the day's row with the time of the next attempt
(exponential backoff), and the sweep every quarter hour asks again: a day without
its token stays visible on its page and in `verify_publications` until it has one.

A token is accepted only when its imprint is the manifest's hash, its nonce is the
one we sent, and (with TSA_CA_FILE) its signature chains to a configured
certificate that was valid at the stamped time. It is kept byte for byte as the
authority sent it, so anyone can check it with `openssl ts -verify`.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import cryptography.x509
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from publications import retries
from publications.models import DailyManifest, ManifestTimestamp

logger = logging.getLogger(__name__)

SHA256_OID = cryptography.x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
# A token is at most a few kilobytes; anything far larger is not one.
MAX_RESPONSE_BYTES = 256 * 1024


class TimestampError(Exception):
    """The authority did not give a token we can keep."""


def slug(authority: str) -> str:
    """The authority's name in its token's URL: host and path, e.g. https://freetsa.org/tsr → freetsa.org-tsr."""
    parts = re.sub(r"^[a-z]+://", "", authority.lower())
    return re.sub(r"[^a-z0-9.]+", "-", parts).strip("-.")[:200]


def trusted_certificates() -> list[cryptography.x509.Certificate]:
    """The certificates of TSA_CA_FILE (roots and intermediates); empty when it is not set."""
    if not settings.TSA_CA_FILE:
        return []
    return cryptography.x509.load_pem_x509_certificates(Path(settings.TSA_CA_FILE).read_bytes())


def check_token(
    response: TimeStampResponse, manifest_text: str, certificates: list[cryptography.x509.Certificate]
) -> None:
    """Raise VerificationError unless the token stamps this text's SHA-256 and chains to `certificates`.

    The signature is checked with the certificates valid at the stamped time, as a court would
    ask: a certificate that expired since does not undo a token made while it was valid.
    """
    digest = check_token_imprint(response, manifest_text)
    if not certificates:
        raise VerificationError("TSA_CA_FILE is not set, so its signature cannot be checked")
    VerifierBuilder(roots=list(certificates)).build().verify(response, digest)


def check_token_imprint(response: TimeStampResponse, manifest_text: str) -> bytes:
    """Raise VerificationError unless the authority granted a stamp of this text's SHA-256; that digest."""
    if PKIStatus(response.status) != PKIStatus.GRANTED:
        raise VerificationError(f"the authority did not grant it (status {response.status})")
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256_OID:
        raise VerificationError(f"it stamps a {imprint.hash_algorithm.dotted_string} hash, not SHA-256")
    if imprint.message != hashlib.sha256(manifest_text.encode()).digest():
        raise VerificationError("it stamps another hash than the manifest's")
    return imprint.message


def request_token(authority: str, manifest_text: str) -> TimeStampResponse:
    """Ask one authority to stamp the text's SHA-256; the checked response, or TimestampError."""
    request = TimestampRequestBuilder(
        data=manifest_text.encode(), hash_algorithm=HashAlgorithm.SHA256, nonce=True, cert_req=True
    ).build()
    http_request = urllib.request.Request(
        authority,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
    )
    try:
        with urllib.request.urlopen(http_request, timeout=settings.TSA_TIMEOUT) as answer:
            body = answer.read(MAX_RESPONSE_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:  # refused, timed out, HTTP 4xx/5xx
        raise TimestampError(f"no answer: {error}") from error
    if len(body) > MAX_RESPONSE_BYTES:
        raise TimestampError("the answer is too large to be a time stamp")
    try:
        response = decode_timestamp_response(body)
    except ValueError as error:
        raise TimestampError(f"the answer is not a time-stamp response: {error}") from error
    try:
        check_token_imprint(response, manifest_text)
        if response.tst_info.nonce != request.nonce:
            raise VerificationError("its nonce is not the one we sent")
        # Without TSA_CA_FILE the token is kept unchecked rather than lost: verify_publications reports it.
        if certificates := trusted_certificates():
            check_token(response, manifest_text, certificates)
    except VerificationError as error:
        raise TimestampError(f"the token was refused: {error}") from error
    return response


def stamp(day: datetime.date, authority: str) -> ManifestTimestamp:
    """One authority's token for the day's manifest: kept if it exists, else asked for once now.

    A failure is recorded with the time of the next attempt; it never raises, so the caller
    (a task, the sweep) needs no retry of its own.
    """
    manifest = DailyManifest.objects.get(date=day)
    row, _ = ManifestTimestamp.objects.get_or_create(
        manifest=manifest, authority=authority, defaults={"slug": slug(authority)}
    )
    if row.token is not None:
        return row
    try:
        response = request_token(authority, manifest.manifest)
    except TimestampError as error:
        row.attempts += 1
        row.last_error = str(error)[:2000]
        row.next_attempt_at = retries.next_attempt(row.attempts)
        row.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        logger.warning("Time stamp of %s by %s failed (attempt %d): %s", day, authority, row.attempts, error)
        return row
    with transaction.atomic():
        # Another worker may have stored one meanwhile; the first token stays.
        locked = ManifestTimestamp.objects.select_for_update().get(pk=row.pk)
        if locked.token is None:
            locked.token = response.as_bytes()
            locked.stamped_at = response.tst_info.gen_time.astimezone(datetime.UTC)
            locked.attempts += 1
            locked.last_error = ""
            locked.next_attempt_at = None
            locked.save()
    return locked


def of(manifest: DailyManifest) -> list[ManifestTimestamp]:
    """The day's stamps, and an unsaved row for each configured authority not asked yet, so none goes unlisted."""
    rows = list(ManifestTimestamp.objects.filter(manifest=manifest).defer("token"))
    asked = {row.authority for row in rows}
    rows += [
        ManifestTimestamp(manifest=manifest, authority=authority, slug=slug(authority))
        for authority in settings.TSA_URLS
        if authority not in asked
    ]
    return rows


def due(now: datetime.datetime | None = None) -> list[tuple[datetime.date, str]]:
    """(day, authority) pairs still without a token whose next attempt is due, oldest day first."""
    now = now or timezone.now()
    pairs = []
    for authority in settings.TSA_URLS:
        waiting = ManifestTimestamp.objects.filter(authority=authority).filter(
            Q(token__isnull=False) | Q(next_attempt_at__gt=now)
        )
        days = DailyManifest.objects.exclude(date__in=waiting.values("manifest_id")).values_list("date", flat=True)
        pairs += [(day, authority) for day in days]
    return sorted(pairs)


def enqueue(pairs: list[tuple[datetime.date, str]]) -> None:
    """Send each stamp to a worker once the current transaction commits."""
    from publications.tasks import stamp_manifest  # the tasks module imports this one

    retries.send_after_commit(stamp_manifest, [(day.isoformat(), authority) for day, authority in pairs])


@dataclass
class Report:
    """What verify_publications says about the time stamps: failures exit 1, notices are listed."""

    tokens: int = 0
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def verify(report: Report | None = None) -> Report:
    """Check every stored token against its manifest; list every day a configured authority has not stamped."""
    report = report or Report()
    certificates = trusted_certificates()
    grace = datetime.timedelta(hours=settings.TSA_GRACE_HOURS)
    stamps = ManifestTimestamp.objects.select_related("manifest").order_by("manifest_id", "authority")
    stamped: set[tuple[datetime.date, str]] = set()
    for row in stamps.filter(token__isnull=False).iterator():
        report.tokens += 1
        stamped.add((row.manifest_id, row.authority))
        where = f"time stamp {row.manifest_id} by {row.authority_name}"
        try:
            response = decode_timestamp_response(bytes(row.token))
            check_token(response, row.manifest.manifest, certificates)
        except (ValueError, VerificationError) as error:
            report.problems.append(f"{where}: {error}")
            continue
        stamped_at = response.tst_info.gen_time.astimezone(datetime.UTC)
        day_end = datetime.datetime.combine(row.manifest_id, datetime.time(), tzinfo=datetime.UTC) + datetime.timedelta(
            days=1
        )
        if stamped_at != row.stamped_at:
            report.problems.append(f"{where}: the token says {stamped_at:%Y-%m-%d %H:%M:%S}Z, the record another time")
        if stamped_at < day_end:
            report.problems.append(f"{where}: stamped {stamped_at:%Y-%m-%d %H:%M:%S}Z, before the day was over")
        elif stamped_at > day_end + grace:
            report.notices.append(
                f"{where}: stamped late, {(stamped_at - day_end) / datetime.timedelta(hours=1):.0f} hours after "
                f"the day ended (grace {settings.TSA_GRACE_HOURS} h): it dates the manifest from then"
            )
    pending = {(row.manifest_id, row.authority): row for row in stamps.filter(token__isnull=True).defer("token")}
    for manifest in DailyManifest.objects.order_by("date").only("date"):
        for authority in settings.TSA_URLS:
            if (manifest.date, authority) not in stamped:
                row = pending.get((manifest.date, authority))
                tried = (
                    f"{row.attempts} attempt(s), last: {row.last_error}" if row and row.attempts else "not asked yet"
                )
                report.notices.append(f"manifest {manifest.date}: no time stamp by {authority} ({tried})")
    return report
