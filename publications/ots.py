"""OpenTimestamps: a second, independent anchor of each day's manifest, in the Bitcoin block chain.

RFC 3161 authorities (publications/timestamps.py) are organisations that could close or be
doubted; an OpenTimestamps proof instead ties the manifest's SHA-256 to a Bitcoin block, which
nobody can back-date. With OTS_CALENDARS set, each new manifest's hash (behind a random nonce, as
the `ots` client does) is submitted to every calendar named. Their answers are merged into one
proof, which at first only promises an attestation ("pending"). A calendar commits its digests to
a Bitcoin transaction within hours, so the sweep asks each pending calendar again, with backoff,
until it answers with the path to a block header. That complete proof is what `ots verify` checks
against a Bitcoin node.

The proof is stored and served (`/publications/YYYY-MM-DD/manifest.json.ots`) in the standard
detached format, so `ots info` and `ots verify` read it as they read their own.
`verify_publications` checks what can be checked without a Bitcoin node: that the proof commits to
the manifest's hash, and which attestations it holds.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import urllib.error
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from opentimestamps.calendar import RemoteCalendar
from opentimestamps.core.notary import BitcoinBlockHeaderAttestation, PendingAttestation
from opentimestamps.core.op import OpAppend, OpSHA256
from opentimestamps.core.serialize import (
    BytesDeserializationContext,
    BytesSerializationContext,
    DeserializationError,
)
from opentimestamps.core.timestamp import DetachedTimestampFile, Timestamp

from publications import retries
from publications.models import DailyManifest, OpenTimestampsProof

logger = logging.getLogger(__name__)

USER_AGENT = "AllThePatents (publications/ots.py)"


class CalendarError(Exception):
    """No calendar gave a usable answer."""


def serialize(proof: DetachedTimestampFile) -> bytes:
    context = BytesSerializationContext()
    proof.serialize(context)
    return context.getbytes()


def deserialize(data: bytes) -> DetachedTimestampFile:
    return DetachedTimestampFile.deserialize(BytesDeserializationContext(data))


def _calendar(url: str) -> RemoteCalendar:
    return RemoteCalendar(url.rstrip("/") + "/", user_agent=USER_AGENT)


def submit(manifest_text: str) -> tuple[DetachedTimestampFile, list[str]]:
    """The manifest's proof from every calendar that answered, and the errors of those that did not."""
    proof = DetachedTimestampFile(OpSHA256(), Timestamp(hashlib.sha256(manifest_text.encode()).digest()))
    # The nonce keeps the manifest's hash itself off the calendars' public lists, as the ots client does.
    committed = proof.timestamp.ops.add(OpAppend(os.urandom(16))).ops.add(OpSHA256())
    errors = []
    for url in settings.OTS_CALENDARS:
        try:
            committed.merge(_calendar(url).submit(committed.msg, timeout=settings.TSA_TIMEOUT))
        except (urllib.error.URLError, OSError, DeserializationError, ValueError) as error:
            errors.append(f"{url}: {error}")
    if not any(True for _ in proof.timestamp.all_attestations()):
        raise CalendarError("; ".join(errors) or "no calendar is configured")
    return proof, errors


def _pending(timestamp: Timestamp) -> Iterator[tuple[Timestamp, PendingAttestation]]:
    for attestation in timestamp.attestations:
        if isinstance(attestation, PendingAttestation):
            yield timestamp, attestation
    for child in timestamp.ops.values():
        yield from _pending(child)


def bitcoin_heights(proof: DetachedTimestampFile) -> list[int]:
    return sorted(
        attestation.height
        for _, attestation in proof.timestamp.all_attestations()
        if isinstance(attestation, BitcoinBlockHeaderAttestation)
    )


def upgrade(proof: DetachedTimestampFile) -> list[str]:
    """Ask each pending calendar we trust for its complete path; the errors of those not ready or not reachable."""
    trusted = {url.rstrip("/") for url in settings.OTS_CALENDARS}
    errors = []
    for stamp, attestation in list(_pending(proof.timestamp)):
        # Only calendars we submitted to are asked: the URI comes from their answer, not from us.
        if attestation.uri.rstrip("/") not in trusted:
            continue
        try:
            stamp.merge(_calendar(attestation.uri).get_timestamp(stamp.msg, timeout=settings.TSA_TIMEOUT))
        except KeyError as error:  # CommitmentNotFoundError: not in a block yet
            errors.append(f"{attestation.uri}: {getattr(error, 'reason', error)}")
        except (urllib.error.URLError, OSError, DeserializationError, ValueError) as error:
            errors.append(f"{attestation.uri}: {error}")
    return errors


def anchor(day: datetime.date) -> OpenTimestampsProof:
    """The day's proof: submitted if there is none, else asked to complete. Never raises (the sweep retries)."""
    manifest = DailyManifest.objects.get(date=day)
    row, _ = OpenTimestampsProof.objects.get_or_create(manifest=manifest)
    if row.bitcoin_height is not None:
        return row
    row.attempts += 1
    try:
        if row.proof is None:
            proof, errors = submit(manifest.manifest)
        else:
            proof = deserialize(bytes(row.proof))
            errors = upgrade(proof)
    except CalendarError as error:
        row.last_error = str(error)[:2000]
        row.next_attempt_at = retries.next_attempt(row.attempts)
        row.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        logger.warning("OpenTimestamps proof of %s failed (attempt %d): %s", day, row.attempts, error)
        return row
    heights = bitcoin_heights(proof)
    with transaction.atomic():
        locked = OpenTimestampsProof.objects.select_for_update().get(pk=row.pk)
        locked.proof = serialize(proof)
        locked.attempts = row.attempts
        locked.bitcoin_height = heights[0] if heights else None
        locked.last_error = "; ".join(errors)[:2000]
        # Calendars aggregate for a few hours before their transaction confirms: ask again until then.
        locked.next_attempt_at = None if heights else retries.next_attempt(row.attempts)
        locked.save()
    return locked


def due(now: datetime.datetime | None = None) -> list[datetime.date]:
    """Days without a complete proof whose next attempt is due, oldest first."""
    if not settings.OTS_CALENDARS:
        return []
    now = now or timezone.now()
    waiting = OpenTimestampsProof.objects.filter(Q(bitcoin_height__isnull=False) | Q(next_attempt_at__gt=now))
    days = DailyManifest.objects.exclude(date__in=waiting.values("manifest_id")).order_by("date")
    return list(days.values_list("date", flat=True))


def enqueue(days: list[datetime.date]) -> None:
    from publications.tasks import anchor_manifest  # the tasks module imports this one

    if settings.OTS_CALENDARS:
        retries.send_after_commit(anchor_manifest, [(day.isoformat(),) for day in days])


def verify() -> tuple[list[str], list[str]]:
    """(problems, notices) of every stored proof, as far as they can be checked without a Bitcoin node."""
    problems, notices = [], []
    for row in OpenTimestampsProof.objects.filter(proof__isnull=False).select_related("manifest").order_by("manifest"):
        where = f"OpenTimestamps proof of {row.manifest_id}"
        try:
            proof = deserialize(bytes(row.proof))
        except (DeserializationError, ValueError) as error:
            problems.append(f"{where}: not a proof ({error})")
            continue
        if proof.file_digest != hashlib.sha256(row.manifest.manifest.encode()).digest():
            problems.append(f"{where}: it commits to another hash than the manifest's")
            continue
        heights = bitcoin_heights(proof)
        if row.bitcoin_height is not None and heights[:1] != [row.bitcoin_height]:
            problems.append(f"{where}: it names Bitcoin block(s) {heights}, the record block {row.bitcoin_height}")
        elif heights:
            notices.append(
                f"{where}: attested in Bitcoin block {heights[0]}; the block header is not checked here "
                "(`ots verify manifest.json.ots` on a machine with a Bitcoin node does)"
            )
        else:
            notices.append(f"{where}: pending at its calendars (not in a Bitcoin block yet)")
    return problems, notices
