"""Publishing: the one way a document enters the store, whatever made it.

Imported reference patents and generated inventions both come through
`publish()`, so a rule of publication (a new index, a check, a timestamp) has
one place to go. The database adds the rest at INSERT (migration 0002): the
publication time from its own clock and the SHA-256 of the canonical text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def _passages(patents: Sequence[Patent], vectors: Sequence[Sequence[np.ndarray] | np.ndarray]) -> list[PatentPassage]:
    """Each patent's passage rows, from its chunk vectors in the document's order."""
    return [
        PatentPassage(patent=patent, position=position, embedding=vector)
        for patent, rows in zip(patents, vectors, strict=True)
        for position, vector in enumerate(rows)
    ]


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
    PatentPassage.objects.bulk_create(_passages(patents, [document.passages for document in documents]))
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
                _passages(batch, [document.passages for document in vectors]),
                ignore_conflicts=True,  # another process embedded the same batch meanwhile
            )
        done += len(batch)
    return done


def reembed(*, after_id: int = 0, batch_size: int = 64, on_batch: Callable[[int, int], None] | None = None) -> int:
    """Recompute every stored document's vectors with the current embedding model (after it changed).

    In id order, one transaction per batch; `on_batch(count, last_id)` after each, so an
    interrupted run resumes from the last id it reported. The text is not touched (it can't be).
    """
    done = 0
    while batch := list(
        Patent.objects.filter(id__gt=after_id).only("id", "title", "abstract", "claims").order_by("id")[:batch_size]
    ):
        vectors = embed_passages([DocumentText(p.title, p.abstract, p.claims) for p in batch])
        for patent, document in zip(batch, vectors, strict=True):
            patent.embedding = document.mean
        with transaction.atomic():
            Patent.objects.bulk_update(batch, ["embedding"])
            PatentPassage.objects.filter(patent__in=batch).delete()
            PatentPassage.objects.bulk_create(_passages(batch, [document.passages for document in vectors]))
        done += len(batch)
        after_id = batch[-1].id
        if on_batch:
            on_batch(len(batch), after_id)
    return done


# A document vector the current model makes again matches its stored copy to about 1e-6; the stock
# and the bundled model's vectors of one document are 0.75 to 0.97 apart (the 1,246 sample documents).
SAME_MODEL_COSINE = 0.999


def vectors_out_of_date() -> bool:
    """Whether stored vectors were made by another embedding model (or chunking) than this process's.

    Re-embedding goes in id order and new documents get the current model's vectors, so the first
    and the last embedded document tell for the whole store: both must be what the model makes now.
    """
    embedded = Patent.objects.filter(embedding__isnull=False).only("id", "title", "abstract", "claims", "embedding")
    ends = (embedded.order_by("id").first(), embedded.order_by("-id").first())
    documents = list({patent.id: patent for patent in ends if patent}.values())
    if not documents:
        return False
    vectors = embed_passages([DocumentText(p.title, p.abstract, p.claims) for p in documents])
    return any(
        float(np.dot(np.asarray(patent.embedding, dtype=np.float32), fresh.mean)) < SAME_MODEL_COSINE
        for patent, fresh in zip(documents, vectors, strict=True)
    )
