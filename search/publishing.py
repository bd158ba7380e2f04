"""Publishing: the one way a document enters the store, whatever made it.

Imported reference patents and generated inventions both come through
`publish()`, so a rule of publication (a new index, a check, a timestamp) has
one place to go. The database adds the rest at INSERT (migration 0002): the
publication time from its own clock and the SHA-256 of the canonical text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from search.documents import Claim, canonical_text
from search.indexing import index_shingles
from search.models import Origin, Patent


@dataclass(frozen=True)
class NewDocument:
    title: str
    abstract: str
    claims: list[Claim]
    origin: Origin
    embedding: Sequence[float]
    # The columns of its origin: a reference patent's source_id, source_date, cpc, ipc; a generated
    # document's provenance (generation_run, model_name, model_revision, prompt_mode, decoding, seed,
    # generated_at) and quality_score.
    details: Mapping[str, object] = field(default_factory=dict)


def publish(documents: Sequence[NewDocument]) -> list[Patent]:
    """Store the documents with their canonical text, and index them for the copy check.

    Runs in the caller's transaction: a batch is published whole or not at all.
    """
    patents = [
        Patent(
            title=document.title,
            abstract=document.abstract,
            claims=document.claims,
            text=canonical_text(title=document.title, abstract=document.abstract, claims=document.claims),
            origin=document.origin,
            embedding=document.embedding,
            **document.details,
        )
        for document in documents
    ]
    Patent.objects.bulk_create(patents)
    index_shingles(patents)
    return patents
