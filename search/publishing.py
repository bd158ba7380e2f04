"""Publishing: the one way a document enters the store, whatever made it.

Imported reference patents and generated inventions both come through
`publish()`, so a rule of publication (a new index, a check, a timestamp) has
one place to go. The database adds the rest at INSERT (migration 0002): the
publication time from its own clock and the SHA-256 of the canonical text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from search.documents import Claim, canonical_text
from search.embedding import DocumentText, embed_passages
from search.indexing import index_shingles
from search.models import Origin, Patent, PatentPassage


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
    # One vector per chunk of the text (search.embedding.embed_passages), for passage-level search.
    passages: Sequence[np.ndarray] | np.ndarray = ()
    # The published text when another site published it (a mirror's copy): kept byte for byte,
    # since its hash is the origin's. Otherwise the canonical text of the fields.
    text: str = ""


def publish(documents: Sequence[NewDocument]) -> list[Patent]:
    """Store the documents with their canonical text and passages, and index them for the copy check.

    Runs in the caller's transaction: a batch is published whole or not at all.
    """
    patents = [
        Patent(
            title=document.title,
            abstract=document.abstract,
            claims=document.claims,
            text=document.text
            or canonical_text(title=document.title, abstract=document.abstract, claims=document.claims),
            origin=document.origin,
            embedding=document.embedding,
            **document.details,
        )
        for document in documents
    ]
    Patent.objects.bulk_create(patents)
    PatentPassage.objects.bulk_create(
        PatentPassage(patent=patent, position=position, embedding=vector)
        for patent, document in zip(patents, documents, strict=True)
        for position, vector in enumerate(document.passages)
    )
    index_shingles(patents)
    return patents


def embed_missing_passages(*, batch_size: int = 64) -> int:
    """Embed the passages of stored documents that have none (documents published before passages were kept).

    Each batch is written in one transaction, so an interrupted run resumes where it stopped.
    """
    done = 0
    while batch := list(
        Patent.objects.filter(passages__isnull=True)
        .only("id", "title", "abstract", "claims")
        .order_by("id")[:batch_size]
    ):
        vectors = embed_passages([DocumentText(p.title, p.abstract, p.claims) for p in batch])
        with transaction.atomic():
            PatentPassage.objects.bulk_create(
                (
                    PatentPassage(patent=patent, position=position, embedding=vector)
                    for patent, document in zip(batch, vectors, strict=True)
                    for position, vector in enumerate(document.passages)
                ),
                ignore_conflicts=True,  # another process embedded the same batch meanwhile
            )
        done += len(batch)
    return done
