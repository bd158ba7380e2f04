"""Import of real (reference) patents from JSON Lines.

The format is that of data/patents-sample/patents.jsonl: one object per line
with `id` (publication number), `title`, `abstract`, `claims` (strings that
start with their number), `date` (ISO or null), `cpc` and `ipc` (lists).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from django.db import transaction

from search.documents import Claim, parse_claim
from search.embedding import DocumentText, embed_documents
from search.models import Origin, Patent
from search.publishing import NewDocument, publish

# The bundled demo corpus: 1,246 real US patents (see data/patents-sample/README.md).
SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "data" / "patents-sample" / "patents.jsonl"


class MalformedLine(ValueError):
    def __init__(self, path: Path, line_number: int, problem: str) -> None:
        super().__init__(f"{path}, line {line_number}: {problem}")


@dataclass(frozen=True)
class ReferencePatent:
    source_id: str
    title: str
    abstract: str
    claims: list[Claim]
    date: datetime.date | None
    cpc: list[str] = field(default_factory=list)
    ipc: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    created: int = 0
    skipped: int = 0


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return value.strip()


def _strings(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{key}' must be a list of strings")
    return [item.strip() for item in value]


def parse_record(line: str) -> ReferencePatent:
    """One JSONL line as a reference patent; ValueError names the problem."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    claims = _strings(record, "claims")
    if not claims or not all(claims):
        raise ValueError("'claims' must be a non-empty list of non-empty strings")
    date = record.get("date")
    if date is not None:
        try:
            date = datetime.date.fromisoformat(date)
        except (TypeError, ValueError):
            raise ValueError(f"'date' must be YYYY-MM-DD or null, not {date!r}") from None
    return ReferencePatent(
        source_id=_text(record, "id"),
        title=_text(record, "title"),
        abstract=_text(record, "abstract"),
        claims=[parse_claim(claim, position) for position, claim in enumerate(claims, start=1)],
        date=date,
        cpc=_strings(record, "cpc"),
        ipc=_strings(record, "ipc"),
    )


def read_records(path: Path) -> Iterator[tuple[int, ReferencePatent]]:
    """(line number, record) for each non-blank line; MalformedLine stops at the first bad one."""
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, parse_record(line)
            except ValueError as error:
                raise MalformedLine(path, line_number, str(error)) from None


def store_batch(records: list[ReferencePatent]) -> ImportResult:
    """Embed and publish the records not stored yet, all of them or none."""
    source_ids = [record.source_id for record in records]
    existing = set(Patent.objects.filter(source_id__in=source_ids).values_list("source_id", flat=True))
    new: dict[str, ReferencePatent] = {}
    for record in records:
        if record.source_id not in existing:
            new.setdefault(record.source_id, record)
    fresh = list(new.values())
    vectors = embed_documents([DocumentText(r.title, r.abstract, r.claims) for r in fresh])
    documents = [
        NewDocument(
            title=record.title,
            abstract=record.abstract,
            claims=record.claims,
            origin=Origin.REFERENCE,
            embedding=vector,
            details={"source_id": record.source_id, "source_date": record.date, "cpc": record.cpc, "ipc": record.ipc},
        )
        for record, vector in zip(fresh, vectors, strict=True)
    ]
    with transaction.atomic():
        # A concurrent import of the same records fails here on the unique
        # source_id and changes nothing; run it again to resume.
        patents = publish(documents)
    return ImportResult(created=len(patents), skipped=len(records) - len(patents))


def import_patents(path: Path, *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None) -> ImportResult:
    """Import a JSONL file, idempotently: patents already stored (by publication number) are skipped.

    Batches are validated completely before anything of them is written, so a
    malformed line stops the import with the batches before it stored and
    nothing of its own batch written.
    """
    total = ImportResult()
    records = read_records(path)
    while batch := [record for _, record in islice(records, batch_size)]:
        result = store_batch(batch)
        total.created += result.created
        total.skipped += result.skipped
        if on_batch:
            on_batch(len(batch))
    return total
