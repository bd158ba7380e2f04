"""Building and verifying the daily manifests and their bulk dumps.

A manifest covers one UTC day once that day is over: every document
published that day (withdrawn ones too, by their tombstones) in id order,
with its text's SHA-256, their Merkle root (publications/merkle.py), the
previous day's root and manifest hash, and the SHA-256 of that day's dump
(JSON Lines, gzip with a zero timestamp so the same documents always give the
same bytes). Days with no publications still get a manifest, so the chain has
no gaps.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Min

from publications import archiving, merkle, ots, timestamps
from publications.models import DailyManifest, Mirror
from search.documents import sha256_hex
from search.models import Patent, Tombstone


def dump_path(day: datetime.date) -> Path:
    return Path(settings.VAR_DIR) / "publications" / f"{day.isoformat()}.jsonl.gz"


def _day_range(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    return start, start + datetime.timedelta(days=1)


def _entries(day: datetime.date) -> list[tuple[int, str, str]]:
    """(number, public id, sha256) of every document published that day, withdrawn or not, by number."""
    start, end = _day_range(day)
    published = Patent.objects.filter(published_at__gte=start, published_at__lt=end).values_list("id", "sha256")
    withdrawn = Tombstone.objects.filter(published_at__gte=start, published_at__lt=end).values_list("id", "sha256")
    rows = sorted([*published, *withdrawn])
    return [(number, Patent(id=number).public_id, sha) for number, sha in rows]


def _dump(day: datetime.date, site_url: str) -> bytes:
    start, end = _day_range(day)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as archive:
        for patent in Patent.objects.filter(published_at__gte=start, published_at__lt=end).order_by("id").iterator():
            record = patent.record(f"{site_url}{patent.get_absolute_url()}")
            archive.write(json.dumps(record, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return buffer.getvalue()


def first_day() -> datetime.date | None:
    earliest = [
        value
        for value in (
            Patent.objects.aggregate(first=Min("published_at"))["first"],
            Tombstone.objects.aggregate(first=Min("published_at"))["first"],
        )
        if value
    ]
    return min(earliest).astimezone(datetime.UTC).date() if earliest else None


def build_missing(until: datetime.date | None = None) -> list[DailyManifest]:
    """Manifests for every finished day not yet covered, oldest first (each needs the one before).

    None on a mirror: its manifests are the origin's, copied as they are (publications/mirroring.py).
    """
    if Mirror.objects.exists():
        return []
    today = datetime.datetime.now(datetime.UTC).date()
    last = min(until or today - datetime.timedelta(days=1), today - datetime.timedelta(days=1))
    latest = DailyManifest.objects.order_by("-date").first()
    day = latest.date + datetime.timedelta(days=1) if latest else first_day()
    built = []
    while day is not None and day <= last:
        built.append(build(day))
        day += datetime.timedelta(days=1)
    return built


@transaction.atomic
def build(day: datetime.date) -> DailyManifest:
    previous = DailyManifest.objects.filter(date=day - datetime.timedelta(days=1)).first()
    entries = _entries(day)
    dump = _dump(day, settings.SITE_URL)
    path = dump_path(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump)
    root = merkle.root([merkle.leaf(public_id, sha) for _, public_id, sha in entries])
    document = {
        "date": day.isoformat(),
        "documents": [{"id": public_id, "sha256": sha} for _, public_id, sha in entries],
        "count": len(entries),
        "merkle_root": root,
        "merkle_tree": "RFC 6962: leaf = SHA-256(0x00 || '<id> <sha256>'), node = SHA-256(0x01 || left || right)",
        "previous_date": previous.date.isoformat() if previous else None,
        "previous_root": previous.merkle_root if previous else None,
        "previous_manifest_sha256": previous.manifest_sha256 if previous else None,
        "dump_sha256": hashlib.sha256(dump).hexdigest(),
    }
    text = json.dumps(document, indent=1, sort_keys=True)
    timestamps.enqueue([(day, authority) for authority in settings.TSA_URLS])
    archiving.enqueue([day])
    ots.enqueue([day])
    return DailyManifest.objects.create(
        date=day,
        count=len(entries),
        merkle_root=root,
        previous_root=previous.merkle_root if previous else "",
        manifest=text,
        manifest_sha256=hashlib.sha256(text.encode()).hexdigest(),
        dump_sha256=document["dump_sha256"],
    )


@dataclass
class Verification:
    documents: int = 0
    manifests: int = 0
    tokens: int = 0
    problems: list[str] = field(default_factory=list)
    # Worth saying but not a mismatch: a day an authority has not stamped yet, a late stamp.
    notices: list[str] = field(default_factory=list)


def verify() -> Verification:
    """Recompute every document hash, every manifest's root and chain, every dump's checksum; check every time stamp."""
    report = Verification()
    for patent in Patent.objects.only("id", "text", "sha256").order_by("id").iterator(chunk_size=2000):
        report.documents += 1
        if sha256_hex(patent.text) != patent.sha256:
            report.problems.append(f"{patent.public_id}: the text does not match its published SHA-256")
    previous: DailyManifest | None = None
    for manifest in DailyManifest.objects.order_by("date").iterator():
        report.manifests += 1
        report.problems += _check_manifest(manifest, previous)
        previous = manifest
    stamps = timestamps.verify()
    report.tokens, report.problems, report.notices = stamps.tokens, report.problems + stamps.problems, stamps.notices
    anchor_problems, anchor_notices = ots.verify()
    report.problems += anchor_problems
    report.notices += anchor_notices
    return report


def _check_manifest(manifest: DailyManifest, previous: DailyManifest | None) -> list[str]:
    problems = []
    day = manifest.date.isoformat()
    if hashlib.sha256(manifest.manifest.encode()).hexdigest() != manifest.manifest_sha256:
        problems.append(f"manifest {day}: its text does not match its SHA-256")
    document = json.loads(manifest.manifest)
    entries = _entries(manifest.date)
    current = [{"id": public_id, "sha256": sha} for _, public_id, sha in entries]
    if current != document["documents"]:
        problems.append(f"manifest {day}: the documents published that day differ from the manifest")
    if merkle.root([merkle.leaf(public_id, sha) for _, public_id, sha in entries]) != manifest.merkle_root:
        problems.append(f"manifest {day}: the Merkle root of that day's documents differs")
    if previous is not None and (
        document["previous_root"] != previous.merkle_root
        or document["previous_manifest_sha256"] != previous.manifest_sha256
    ):
        problems.append(f"manifest {day}: the chain to {previous.date.isoformat()} is broken")
    path = dump_path(manifest.date)
    if not path.exists():
        problems.append(f"manifest {day}: the dump {path.name} is missing")
    elif hashlib.sha256(path.read_bytes()).hexdigest() != manifest.dump_sha256:
        problems.append(f"manifest {day}: the dump {path.name} does not match its SHA-256")
    return problems
