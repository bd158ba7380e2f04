"""Import of real (reference) patents from JSON Lines.

The format is that of data/patents-sample/patents.jsonl: one object per line
with `id` (publication number), `title`, `abstract`, `claims` (strings that
start with their number), `date` (ISO or null), `cpc` and `ipc` (lists).

Embedding is most of an import's time (4-5 minutes for the bundled sample on
2 cores), so a file may come with its vectors precomputed beside it
(`patents.vectors.npz`, written by `manage.py precompute_vectors`). A vector
is used only when it was made by the same embedding model and recipe from the
same text; any other record is embedded as usual.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction

from search.documents import Claim, parse_claim
from search.embedding import DocumentText, DocumentVectors, embed_passages, model_fingerprint
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


def document_text(record: ReferencePatent) -> DocumentText:
    return DocumentText(record.title, record.abstract, record.claims)


def text_digest(record: ReferencePatent) -> str:
    """What a vector was made from: the embedded text, exactly."""
    text = [record.title, record.abstract, record.claims]
    return hashlib.sha256(json.dumps(text, sort_keys=True).encode()).hexdigest()


def vectors_path(path: Path) -> Path:
    return path.with_suffix(".vectors.npz")


class PrecomputedVectors:
    """The vectors saved beside a JSONL file, keyed by publication number and text digest."""

    def __init__(self, vectors: dict[tuple[str, str], DocumentVectors]) -> None:
        self.vectors = vectors

    @classmethod
    def beside(cls, path: Path) -> PrecomputedVectors:
        """The file's saved vectors, or none if there are none or another model or recipe made them."""
        saved = vectors_path(path)
        if not saved.exists():
            return cls({})
        with np.load(saved, allow_pickle=False) as arrays:
            if str(arrays["fingerprint"]) != model_fingerprint():
                return cls({})
            keys = zip(arrays["source_ids"].tolist(), arrays["digests"].tolist(), strict=True)
            ends = np.cumsum(arrays["passage_counts"])
            passages = np.split(arrays["passages"].astype(np.float32), ends[:-1])
            vectors = [DocumentVectors(mean, rows) for mean, rows in zip(arrays["vectors"], passages, strict=True)]
            return cls(dict(zip(keys, vectors, strict=True)))

    def get(self, record: ReferencePatent) -> DocumentVectors | None:
        return self.vectors.get((record.source_id, text_digest(record)))

    def __len__(self) -> int:
        return len(self.vectors)


def save_vectors(path: Path, *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None) -> Path:
    """Embed every record of a JSONL file and save the vectors beside it (for PrecomputedVectors).

    Passages are saved in half precision (a cosine moves by about 1e-3), which halves the file.
    """
    records = [record for _, record in read_records(path)]
    vectors: list[DocumentVectors] = []
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        vectors += embed_passages([document_text(record) for record in batch])
        if on_batch:
            on_batch(len(batch))
    output = vectors_path(path)
    np.savez_compressed(
        output,
        fingerprint=np.array(model_fingerprint()),
        source_ids=np.array([record.source_id for record in records]),
        digests=np.array([text_digest(record) for record in records]),
        vectors=np.array([v.mean for v in vectors], dtype=np.float32).reshape(len(records), -1),
        passages=np.concatenate([v.passages for v in vectors]).astype(np.float16),
        passage_counts=np.array([len(v.passages) for v in vectors], dtype=np.int32),
    )
    return output


def store_batch(records: list[ReferencePatent], precomputed: PrecomputedVectors | None = None) -> ImportResult:
    """Embed (or take the precomputed vectors of) and publish the records not stored yet, all or none."""
    source_ids = [record.source_id for record in records]
    existing = set(Patent.objects.filter(source_id__in=source_ids).values_list("source_id", flat=True))
    new: dict[str, ReferencePatent] = {}
    for record in records:
        if record.source_id not in existing:
            new.setdefault(record.source_id, record)
    fresh = list(new.values())
    saved = [precomputed.get(record) if precomputed else None for record in fresh]
    missing = [record for record, vector in zip(fresh, saved, strict=True) if vector is None]
    embedded = iter(embed_passages([document_text(record) for record in missing]))
    vectors = [vector if vector is not None else next(embedded) for vector in saved]
    documents = [
        NewDocument(
            title=record.title,
            abstract=record.abstract,
            claims=record.claims,
            origin=Origin.REFERENCE,
            embedding=vector.mean,
            passages=vector.passages,
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
    precomputed = PrecomputedVectors.beside(path)
    records = read_records(path)
    while batch := [record for _, record in islice(records, batch_size)]:
        result = store_batch(batch, precomputed)
        total.created += result.created
        total.skipped += result.skipped
        if on_batch:
            on_batch(len(batch))
    return total
