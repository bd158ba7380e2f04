"""Mirrors: a read-only copy of another installation's record, verified before anything is stored.

Lots of copies keep prior art alive when one site goes down. A copy takes the origin's published
days, oldest first, from its base URL or from a folder of downloaded days laid out like the
site's `/publications/` (`index.json`, then `<day>/manifest.json`, `<day>/documents.jsonl.gz` and
`<day>/manifest.json.<authority>.tsr`). A day is stored only once all of it checks out:

- the manifest's text has the SHA-256 the index gives, its Merkle root is that of its documents,
  and it chains to the day before as the copy stored it (a copy starts at the origin's first day);
- the dump has the SHA-256 the manifest gives; every document in it has the manifest's hash for
  its id, a text with that hash, and a publication time on that day; every document of the
  manifest missing from the dump was withdrawn, with the same hash;
- every time stamp stamps the manifest's hash, after the day ended, and (with TSA_CA_FILE)
  chains to a trusted authority.

A day is stored in one transaction, with the origin's manifest, dump bytes and tokens as they
are, so `verify_publications` checks the copy as it checks the origin. Running it again stores
only what is new (days, late time stamps, withdrawals): it resumes where it stopped, and a
failure leaves the days before it stored. The origin's dates stay the origin's; the database
stamps each copy's own `first_seen_at` beside them (migration search/0014).
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from opentimestamps.core.serialize import DeserializationError
from redis.exceptions import RedisError
from rfc3161_client import TimeStampResponse, VerificationError, decode_timestamp_response

from publications import manifests, merkle, ots, timestamps
from publications.models import DailyManifest, ManifestTimestamp, Mirror, OpenTimestampsProof
from search.documents import Claim
from search.embedding import DocumentText, embed_passages
from search.models import Origin, Patent, Tombstone, parse_public_id
from search.publishing import NewDocument, publish

logger = logging.getLogger(__name__)

INDEX = "index.json"
# A dump of a busy day is tens of megabytes; a manifest or a token far less.
MAX_DOWNLOAD_BYTES = 1 << 30
CACHE_KEY = "publications:mirror"
EMBED_BATCH = 64


class MirrorError(Exception):
    """The source's record does not check out: nothing of the day in question was stored."""


def current() -> Mirror | None:
    """This installation's mirror row, if it is one (cached: every page asks)."""
    try:
        found = cache.get(CACHE_KEY)
    except RedisError:  # the cache is down: pages still render, asking the database
        return Mirror.objects.first()
    if found is None:
        found = Mirror.objects.first() or False
        _cache(lambda: cache.set(CACHE_KEY, found, 300))
    return found or None


def _cache(operation: Callable[[], object]) -> None:
    try:
        operation()
    except RedisError as error:
        logger.warning("The cache is unavailable (%s); the mirror banner may lag for five minutes", error)


class Source:
    """Where the days come from: an installation's base URL, or a folder laid out like its /publications/."""

    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")
        self.is_url = location.startswith(("http://", "https://"))
        if not self.is_url and not Path(location, INDEX).is_file():
            raise MirrorError(f"{location} is neither an http(s) URL nor a folder with an {INDEX}")

    def read(self, path: str) -> bytes:
        if not self.is_url:
            try:
                return Path(self.location, path).read_bytes()
            except OSError as error:
                raise MirrorError(f"{path}: {error.strerror}") from error
        url = f"{self.location}/publications/{path}"
        request = urllib.request.Request(url, headers={"User-Agent": "AllThePatents-mirror/1"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                body = answer.read(MAX_DOWNLOAD_BYTES + 1)
        except (urllib.error.URLError, OSError) as error:
            raise MirrorError(f"{url}: {error}") from error
        if len(body) > MAX_DOWNLOAD_BYTES:
            raise MirrorError(f"{url}: larger than {MAX_DOWNLOAD_BYTES:,} bytes")
        return body

    def index(self) -> dict[str, Any]:
        try:
            index = json.loads(self.read(INDEX))
            index["days"].sort(key=lambda day: day["date"])
            return index
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise MirrorError(f"{INDEX} is not an index of published days: {error}") from error


@dataclass
class Report:
    origin: str = ""
    days: int = 0
    documents: int = 0
    withdrawn: int = 0
    tokens: int = 0
    already: int = 0
    lines: list[str] = field(default_factory=list)


@dataclass
class CheckedManifest:
    """A new day whose manifest, chain link and time stamps check out; its dump is checked next."""

    date: datetime.date
    entry: dict[str, Any]  # the day in the index: its stamps and withdrawals
    text: str
    document: dict[str, Any]
    tokens: list[tuple[dict[str, Any], TimeStampResponse]]
    anchor: bytes | None = None  # the OpenTimestamps proof, checked against the manifest's hash


@dataclass
class VerifiedDay:
    manifest: CheckedManifest
    dump: bytes
    records: list[dict[str, Any]]
    withdrawn: list[dict[str, Any]]


def index_document(site_url: str) -> dict[str, Any]:
    """What `/publications/index.json` serves: every built day, its stamps and its withdrawals."""
    mirror = current()
    withdrawn: dict[datetime.date, list[dict[str, Any]]] = {}
    for tombstone in Tombstone.objects.order_by("id"):
        withdrawn.setdefault(tombstone.published_at.astimezone(datetime.UTC).date(), []).append(
            {
                "id": tombstone.public_id,
                "sha256": tombstone.sha256,
                "title": tombstone.title,
                "source_id": tombstone.source_id,
                "published_at": tombstone.published_at.isoformat(),
                "withdrawn_at": tombstone.withdrawn_at.isoformat(),
                "reason": tombstone.reason,
            }
        )
    stamps: dict[datetime.date, list[dict[str, str]]] = {}
    for stamp in ManifestTimestamp.objects.filter(token__isnull=False).defer("token").order_by("authority"):
        stamps.setdefault(stamp.manifest_id, []).append(
            {"authority": stamp.authority, "slug": stamp.slug, "stamped_at": stamp.stamped_at.isoformat()}
        )
    anchors = dict(OpenTimestampsProof.objects.filter(proof__isnull=False).values_list("manifest_id", "bitcoin_height"))
    days = DailyManifest.objects.order_by("date").only("date", "count", "manifest_sha256", "merkle_root")
    return {
        # A copy of a copy still names the site that published the record.
        "record_of": mirror.origin if mirror else site_url,
        "layout": "<date>/manifest.json, <date>/documents.jsonl.gz, <date>/manifest.json.<slug>.tsr, "
        "<date>/manifest.json.ots",
        "days": [
            {
                "date": day.date.isoformat(),
                "count": day.count,
                "manifest_sha256": day.manifest_sha256,
                "merkle_root": day.merkle_root,
                "timestamps": stamps.get(day.date, []),
                "withdrawn": withdrawn.get(day.date, []),
                # <date>/manifest.json.ots when there is one: pending (null), or the Bitcoin block it is in.
                **({"opentimestamps": {"bitcoin_height": anchors[day.date]}} if day.date in anchors else {}),
            }
            for day in days
        ],
    }


def sync(location: str) -> Report:
    """Copy every day the source has and this installation lacks, verified; raises MirrorError at the first bad one.

    The new days' manifests are checked as one chain, from the last day stored to the newest,
    before any of them is stored: a forged day is caught by the genuine day after it.
    """
    source = Source(location)
    index = source.index()
    origin = str(index.get("record_of") or "").rstrip("/")
    if not origin.startswith(("http://", "https://")):
        raise MirrorError(f"{INDEX} does not say whose record it is (record_of)")
    mirror = _claim_installation(origin, location)
    report = Report(origin=origin)
    try:
        latest = DailyManifest.objects.order_by("-date").first()
        fresh = []
        for entry in index["days"]:
            date = datetime.date.fromisoformat(entry["date"])
            if latest is not None and date <= latest.date:
                stored = DailyManifest.objects.filter(date=date).first()
                if stored is None:
                    raise MirrorError(f"{date}: the source has a day the copy skipped; the record has a gap")
                _catch_up(source, entry, stored, report)
            else:
                fresh.append((date, entry))
        for checked in _checked_chain(source, fresh, latest):
            _store(_verified_dump(source, checked), report)
    except (KeyError, TypeError, ValueError, AttributeError, EOFError, OSError) as error:
        # A field missing or of the wrong kind, JSON or gzip that does not parse: the source is not a record.
        problem = MirrorError(f"the source's record is malformed ({type(error).__name__}: {error})")
        Mirror.objects.filter(pk=mirror.pk).update(last_error=str(problem)[:2000])
        raise problem from error
    except MirrorError as error:
        Mirror.objects.filter(pk=mirror.pk).update(last_error=str(error)[:2000])
        _cache(lambda: cache.delete(CACHE_KEY))
        raise
    Mirror.objects.filter(pk=mirror.pk).update(synced_at=timezone.now(), source=location, last_error="")
    _cache(lambda: cache.delete(CACHE_KEY))
    return report


def _claim_installation(origin: str, location: str) -> Mirror:
    mirror = Mirror.objects.first()
    if mirror is not None:
        if mirror.origin != origin:
            raise MirrorError(f"this installation mirrors {mirror.origin}, not {origin}")
        return mirror
    if Patent.objects.exists() or Tombstone.objects.exists() or DailyManifest.objects.exists():
        raise MirrorError("this installation has a record of its own; a mirror starts from an empty one")
    mirror = Mirror.objects.create(origin=origin, source=location)
    _cache(lambda: cache.delete(CACHE_KEY))
    return mirror


def _checked_chain(
    source: Source, fresh: list[tuple[datetime.date, dict[str, Any]]], latest: DailyManifest | None
) -> list[CheckedManifest]:
    """Each new manifest with its hash, root, count, time stamps, and link to the one before it."""
    previous = (
        {"date": latest.date.isoformat(), "root": latest.merkle_root, "sha256": latest.manifest_sha256}
        if latest
        else None
    )
    checked = []
    for date, entry in fresh:
        text = source.read(f"{date}/manifest.json").decode()
        sha = hashlib.sha256(text.encode()).hexdigest()
        if sha != entry["manifest_sha256"]:
            raise MirrorError(f"{date}: the manifest does not have the SHA-256 the index gives")
        document = json.loads(text)
        listed = [item["id"] for item in document["documents"]]
        if document["date"] != date.isoformat() or not document["count"] == len(listed) == len(set(listed)):
            raise MirrorError(f"{date}: the manifest is for another day or miscounts its documents")
        leaves = [merkle.leaf(item["id"], item["sha256"]) for item in document["documents"]]
        if merkle.root(leaves) != document["merkle_root"]:
            raise MirrorError(f"{date}: the manifest's Merkle root is not that of its documents")
        link = (document["previous_date"], document["previous_root"], document["previous_manifest_sha256"])
        if previous is None and link != (None, None, None):
            raise MirrorError(f"{date}: the record starts earlier ({link[0]}); a copy starts at its first day")
        if previous is not None and link != (previous["date"], previous["root"], previous["sha256"]):
            raise MirrorError(f"{date}: the chain to {previous['date']} is broken (it names another manifest)")
        tokens = [(stamp, _verified_token(source, stamp, text, date)) for stamp in entry.get("timestamps", [])]
        checked.append(CheckedManifest(date, entry, text, document, tokens, _verified_anchor(source, entry, text)))
        previous = {"date": date.isoformat(), "root": document["merkle_root"], "sha256": sha}
    return checked


def _verified_dump(source: Source, manifest: CheckedManifest) -> VerifiedDay:
    """The day's dump against its manifest: every document, its hash, its date; the rest withdrawn."""
    date = manifest.date
    dump = source.read(f"{date}/documents.jsonl.gz")
    if hashlib.sha256(dump).hexdigest() != manifest.document["dump_sha256"]:
        raise MirrorError(f"{date}: the dump does not have the SHA-256 the manifest gives")
    entries = {item["id"]: item["sha256"] for item in manifest.document["documents"]}
    records = [json.loads(line) for line in gzip.decompress(dump).splitlines() if line.strip()]
    for record in records:
        if entries.get(record["id"]) != record["sha256"]:
            raise MirrorError(f"{date}: {record['id']} in the dump is not in the manifest with that hash")
        if hashlib.sha256(record["text"].encode()).hexdigest() != record["sha256"]:
            raise MirrorError(f"{date}: {record['id']}'s text does not have its SHA-256")
        if datetime.datetime.fromisoformat(record["published_at"]).astimezone(datetime.UTC).date() != date:
            raise MirrorError(f"{date}: {record['id']} says it was published on another day")
    in_dump = {record["id"] for record in records}
    if len(in_dump) != len(records):
        raise MirrorError(f"{date}: the dump lists a document twice")
    withdrawn = {item["id"]: item for item in manifest.entry.get("withdrawn", [])}
    if any(entries.get(public_id) != item["sha256"] for public_id, item in withdrawn.items()):
        raise MirrorError(f"{date}: a withdrawn document is not in the manifest with that hash")
    for public_id in entries:
        if public_id not in in_dump and public_id not in withdrawn:
            raise MirrorError(f"{date}: {public_id} is in the manifest but neither in the dump nor withdrawn")
    return VerifiedDay(manifest, dump, records, list(withdrawn.values()))


def _verified_token(source: Source, stamp: dict[str, Any], text: str, date: datetime.date) -> TimeStampResponse:
    where = f"{date}: the time stamp by {stamp['authority']}"
    if stamp["slug"] != timestamps.slug(stamp["authority"]):
        raise MirrorError(f"{where} has another name than its authority's")
    body = source.read(f"{date}/manifest.json.{stamp['slug']}.tsr")
    try:
        response = decode_timestamp_response(body)
        timestamps.check_token_imprint(response, text)
        if certificates := timestamps.trusted_certificates():
            timestamps.check_token(response, text, certificates)
    except (ValueError, VerificationError) as error:
        raise MirrorError(f"{where} does not check out: {error}") from error
    day_end = datetime.datetime.combine(date, datetime.time(), tzinfo=datetime.UTC) + datetime.timedelta(days=1)
    if response.tst_info.gen_time.astimezone(datetime.UTC) < day_end:
        raise MirrorError(f"{where} was made before the day was over")
    return response


def _verified_anchor(source: Source, entry: dict[str, Any], text: str) -> bytes | None:
    """The day's OpenTimestamps proof if the source has one; it must commit to this manifest's hash."""
    if "opentimestamps" not in entry:
        return None
    data = source.read(f"{entry['date']}/manifest.json.ots")
    try:
        proof = ots.deserialize(data)
    except (DeserializationError, ValueError) as error:
        raise MirrorError(f"{entry['date']}: the OpenTimestamps proof is not one ({error})") from error
    if proof.file_digest != hashlib.sha256(text.encode()).digest():
        raise MirrorError(f"{entry['date']}: the OpenTimestamps proof commits to another hash than the manifest's")
    return data


def _keep_anchor(manifest: DailyManifest, data: bytes) -> None:
    heights = ots.bitcoin_heights(ots.deserialize(data))
    OpenTimestampsProof.objects.update_or_create(
        manifest=manifest,
        defaults={"proof": data, "bitcoin_height": heights[0] if heights else None, "attempts": 1},
    )


def _store(day: VerifiedDay, report: Report) -> None:
    """One verified day, whole or not at all: documents, withdrawals, manifest, dump and tokens as the origin's."""
    checked = day.manifest
    withdrawn = {entry["id"] for entry in day.withdrawn}
    documents = list(_documents([record for record in day.records if record["id"] not in withdrawn]))
    path = manifests.dump_path(checked.date)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(day.dump)
    with transaction.atomic():
        publish(documents)
        for entry in day.withdrawn:
            _tombstone(entry)
        manifest = DailyManifest.objects.create(
            date=checked.date,
            count=checked.document["count"],
            merkle_root=checked.document["merkle_root"],
            previous_root=checked.document["previous_root"] or "",
            manifest=checked.text,
            manifest_sha256=hashlib.sha256(checked.text.encode()).hexdigest(),
            dump_sha256=checked.document["dump_sha256"],
        )
        for stamp, response in checked.tokens:
            _keep_token(manifest, stamp, response)
        if checked.anchor is not None:
            _keep_anchor(manifest, checked.anchor)
        _advance_numbering()
        # The same bytes whatever happens next: a failed commit leaves a file the next run rewrites.
        partial.replace(path)
    report.days += 1
    report.documents += len(documents)
    report.withdrawn += len(day.withdrawn)
    report.tokens += len(checked.tokens)
    anchored = ", an OpenTimestamps proof" if checked.anchor else ""
    report.lines.append(
        f"{checked.date}: {len(documents)} document(s), {len(day.withdrawn)} withdrawn, "
        f"{len(checked.tokens)} time stamp(s){anchored}: verified and stored"
    )


def _documents(records: list[dict[str, Any]]) -> Iterator[NewDocument]:
    for start in range(0, len(records), EMBED_BATCH):
        batch = records[start : start + EMBED_BATCH]
        claims: list[list[Claim]] = [
            [{"number": c["number"], "through": c.get("through"), "text": c["text"]} for c in r["claims"]]
            for r in batch
        ]
        texts = [DocumentText(r["title"], r["abstract"], c) for r, c in zip(batch, claims, strict=True)]
        for record, claim_list, vectors in zip(batch, claims, embed_passages(texts), strict=True):
            yield NewDocument(
                title=record["title"],
                abstract=record["abstract"],
                claims=claim_list,
                origin=Origin(record["origin"]),
                embedding=vectors.mean,
                passages=vectors.passages,
                text=record["text"],
                details=_details(record),
            )


def _details(record: dict[str, Any]) -> dict[str, object]:
    provenance = record.get("provenance") or {}
    generated_at = provenance.get("generated_at")
    return {
        "id": parse_public_id(record["id"]),
        "published_at": datetime.datetime.fromisoformat(record["published_at"]),
        "publication_date": datetime.date.fromisoformat(record["publication_date"]),
        "mirrored_from": record["url"],
        "source_id": record.get("source_id"),
        "source_date": datetime.date.fromisoformat(record["source_date"]) if record.get("source_date") else None,
        "cpc": record.get("cpc") or [],
        "quality_score": record.get("quality_score"),
        "model_name": provenance.get("model", ""),
        "model_revision": provenance.get("revision", ""),
        "prompt_mode": provenance.get("prompt_mode", ""),
        "decoding": provenance.get("decoding") or {},
        "seed": provenance.get("seed"),
        "generated_at": datetime.datetime.fromisoformat(generated_at) if generated_at else None,
        "contributed_by": provenance.get("contributor") or "",
        "checks_rerun": provenance.get("checks_rerun") or [],
    }


def _tombstone(entry: dict[str, Any]) -> None:
    """The origin's withdrawal, as it recorded it; a stored copy of the document goes."""
    number = parse_public_id(entry["id"])
    if Tombstone.objects.filter(id=number).exists():
        return
    Tombstone.objects.create(
        id=number,
        title=entry["title"],
        source_id=entry["source_id"],
        published_at=datetime.datetime.fromisoformat(entry["published_at"]),
        sha256=entry["sha256"],
        withdrawn_at=datetime.datetime.fromisoformat(entry["withdrawn_at"]),
        reason=entry["reason"],
    )
    Patent.objects.filter(id=number).delete()


def _keep_token(manifest: DailyManifest, stamp: dict[str, Any], response: TimeStampResponse) -> None:
    ManifestTimestamp.objects.create(
        manifest=manifest,
        authority=stamp["authority"],
        slug=stamp["slug"],
        token=response.as_bytes(),
        stamped_at=response.tst_info.gen_time.astimezone(datetime.UTC),
        attempts=1,
    )


def _catch_up(source: Source, day: dict[str, Any], stored: DailyManifest, report: Report) -> None:
    """A day the copy has: the same manifest still, and any stamp or withdrawal the origin added since."""
    if day["manifest_sha256"] != stored.manifest_sha256:
        raise MirrorError(
            f"{stored.date}: the source now gives another manifest than the one copied "
            f"({day['manifest_sha256'][:12]}… against {stored.manifest_sha256[:12]}…); the copy keeps its own"
        )
    have = set(stored.timestamps.filter(token__isnull=False).values_list("authority", flat=True))
    new_stamps = [stamp for stamp in day.get("timestamps", []) if stamp["authority"] not in have]
    tokens = [(stamp, _verified_token(source, stamp, stored.manifest, stored.date)) for stamp in new_stamps]
    entries = {entry["id"]: entry["sha256"] for entry in json.loads(stored.manifest)["documents"]}
    gone = set(Tombstone.objects.filter(published_at__date=stored.date).values_list("id", flat=True))
    withdrawals = [entry for entry in day.get("withdrawn", []) if parse_public_id(entry["id"]) not in gone]
    if any(entries.get(entry["id"]) != entry["sha256"] for entry in withdrawals):
        raise MirrorError(f"{stored.date}: a withdrawn document is not in the manifest with that hash")
    have_anchor = OpenTimestampsProof.objects.filter(manifest=stored, proof__isnull=False).first()
    offered = day.get("opentimestamps")
    # A proof the copy lacks, or a complete one where the copy's is still pending.
    anchor = (
        _verified_anchor(source, day, stored.manifest)
        if offered and (have_anchor is None or (have_anchor.bitcoin_height is None and offered["bitcoin_height"]))
        else None
    )
    if not tokens and not withdrawals and anchor is None:
        report.already += 1
        return
    with transaction.atomic():
        if anchor is not None:
            _keep_anchor(stored, anchor)
        for stamp, response in tokens:
            ManifestTimestamp.objects.filter(manifest=stored, authority=stamp["authority"], token__isnull=True).delete()
            _keep_token(stored, stamp, response)
        for entry in withdrawals:
            _tombstone(entry)
    report.tokens += len(tokens)
    report.withdrawn += len(withdrawals)
    report.lines.append(
        f"{stored.date}: {len(tokens)} new time stamp(s), {len(withdrawals)} new withdrawal(s)"
        + (", a new OpenTimestamps proof" if anchor is not None else "")
    )


def _advance_numbering() -> None:
    """The id sequence past the copied numbers, so the copy could carry on the record if the origin stopped."""
    highest = Patent.objects.aggregate(highest=Max("id"))["highest"]
    tombstoned = Tombstone.objects.aggregate(highest=Max("id"))["highest"]
    top = max(value for value in (highest, tombstoned, 0) if value is not None)
    if top:
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('search_patent', 'id'), %s)", [top])
