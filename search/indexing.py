"""Finding copies: the MinHash bands of stored documents, and the lookup of a new text among them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from search import minhash
from search.models import MinHashBand, Patent

# Estimated share of word 5-grams in common above which a text counts as a copy.
COPY_JACCARD = 0.5


def index_shingles(patents: Iterable[Patent]) -> None:
    """Store the MinHash band keys of these (saved) patents."""
    bands = [
        MinHashBand(key=key, patent_id=patent.pk)
        for patent in patents
        for key in set(minhash.band_keys(minhash.signature(minhash.shingles(_text(patent)))))
    ]
    MinHashBand.objects.bulk_create(bands, ignore_conflicts=True)


@dataclass(frozen=True)
class Copy:
    patent: Patent
    jaccard: float


def find_copy(title: str, abstract: str, claims: list[dict], *, exclude: int | None = None) -> Copy | None:
    """The stored document this text copies most (shared word 5-grams), if any copies it enough.

    `exclude` leaves one stored document out (bench_gates holds each real patent against the others).
    """
    shingle_set = minhash.shingles(minhash.document_text(title, abstract, claims))
    keys = minhash.band_keys(minhash.signature(shingle_set))
    candidates = (
        Patent.objects.filter(pk__in=MinHashBand.objects.filter(key__in=keys).values("patent_id"))
        .exclude(pk=exclude)
        .only("id", "title", "abstract", "claims")
    )
    best = max(
        (Copy(candidate, minhash.jaccard(shingle_set, minhash.shingles(_text(candidate)))) for candidate in candidates),
        key=lambda copy: copy.jaccard,
        default=None,
    )
    return best if best is not None and best.jaccard >= COPY_JACCARD else None


def _text(patent: Patent) -> str:
    return minhash.document_text(patent.title, patent.abstract, patent.claims)
