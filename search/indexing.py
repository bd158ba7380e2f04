"""Keeping stored documents' embeddings in step with the embedding model."""

from __future__ import annotations

from collections.abc import Sequence

from search.embedding import DocumentText, embed_documents
from search.models import Patent


def embed_patents(patent_ids: Sequence[int]) -> int:
    """(Re)compute the embeddings of these patents; returns how many were found.

    Safe to run twice: it only writes the embedding, which the publication
    triggers allow to change.
    """
    patents = list(Patent.objects.filter(pk__in=patent_ids).only("id", "title", "abstract", "claims"))
    vectors = embed_documents([DocumentText(p.title, p.abstract, p.claims) for p in patents])
    for patent, vector in zip(patents, vectors, strict=True):
        patent.embedding = vector
    Patent.objects.bulk_update(patents, ["embedding"])
    return len(patents)
