"""Synthetic patent-like corpora for the scale benchmark (bench_search).

Every document recombines real text from the bundled sample: the title and
first abstract sentence of one patent (its topic), abstract sentences and
claims from other patents, so term frequencies, document lengths and phrase
structure are those of real patents. Embedding a million documents with
MiniLM would take days on two cores, so each document's vector is built from
the real MiniLM vectors of the sentences it is made of: their mean plus a
little noise, normalised; its passages, likewise, are its abstract's and each
claim's. Documents that share sentences are near each other, as real
documents that share text are.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.documents import Claim, canonical_text
from search.embedding import embed_texts
from search.importing import SAMPLE_CORPUS, ReferencePatent, read_records

FIRST_DATE = datetime.date(2000, 1, 1)
DATE_SPAN_DAYS = 25 * 365  # publication dates spread evenly over 2000-2024
NOISE = 0.015
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


@dataclass(frozen=True)
class SyntheticPatent:
    source_id: str
    title: str
    abstract: str
    claims: list[Claim]
    text: str
    date: datetime.date
    cpc: list[str]
    embedding: np.ndarray
    passages: np.ndarray  # title and abstract, then one per claim, as chunk_document would cut them


class SentencePool:
    """The sample's titles, abstract sentences and claims, each with its real MiniLM vector."""

    def __init__(self, records: list[ReferencePatent], vectors: np.ndarray) -> None:
        self.records = records
        self.sentences: list[list[str]] = [_sentences(record.abstract) for record in records]
        self.claims: list[list[str]] = [[claim["text"] for claim in record.claims[:3]] for record in records]
        self.vectors = vectors
        self.flat = self.texts(records)
        self.sentence_index: list[list[int]] = []
        self.claim_index: list[list[int]] = []
        position = 0
        for sentences, claims in zip(self.sentences, self.claims, strict=True):
            self.sentence_index.append(list(range(position, position + len(sentences))))
            position += len(sentences)
            self.claim_index.append(list(range(position, position + len(claims))))
            position += len(claims)

    @classmethod
    def texts(cls, records: list[ReferencePatent]) -> list[str]:
        """The texts to embed, in the order the pool indexes them."""
        return [
            text
            for record in records
            for text in [*_sentences(record.abstract), *(claim["text"] for claim in record.claims[:3])]
        ]

    @classmethod
    def load(cls, cache_dir: Path) -> SentencePool:
        """Embed the pool once (a few minutes on two cores) and keep the vectors under cache_dir."""
        records = [record for _, record in read_records(SAMPLE_CORPUS)]
        cache = cache_dir / "sentence-vectors.npy"
        texts = cls.texts(records)
        if cache.exists():
            vectors = np.load(cache)
            if len(vectors) == len(texts):
                return cls(records, vectors)
        cache_dir.mkdir(parents=True, exist_ok=True)
        vectors = embed_texts(texts)
        np.save(cache, vectors)
        return cls(records, vectors)


def _sentences(abstract: str) -> list[str]:
    return [sentence for sentence in _SENTENCE_END.split(abstract.strip()) if sentence]


def generate(pool: SentencePool, count: int, *, seed: int = 0, start: int = 0) -> Iterator[SyntheticPatent]:
    """`count` documents, the same for the same seed and start, numbered from `start`."""
    random = np.random.default_rng([seed, start])
    patents = len(pool.records)
    for number in range(start, start + count):
        topic = int(random.integers(patents))
        others = random.integers(patents, size=4)
        record = pool.records[topic]
        parts = [pool.sentence_index[topic][0]]
        for other in others[:2]:
            candidates = pool.sentence_index[int(other)]
            parts.append(candidates[int(random.integers(len(candidates)))])
        abstract = " ".join(_text(pool, part) for part in parts)
        claim_parts = [pool.claim_index[topic][0]]
        for other in others[2:]:
            candidates = pool.claim_index[int(other)]
            claim_parts.append(candidates[int(random.integers(len(candidates)))])
        claims: list[Claim] = [
            {"number": position, "text": _text(pool, part)} for position, part in enumerate(claim_parts, start=1)
        ]
        vector = pool.vectors[parts + claim_parts].mean(axis=0) + random.normal(0, NOISE, pool.vectors.shape[1])
        pieces = [pool.vectors[parts].mean(axis=0), *pool.vectors[claim_parts]]
        passages = np.stack(pieces) + random.normal(0, NOISE, (len(pieces), pool.vectors.shape[1]))
        yield SyntheticPatent(
            source_id=f"SYN{number:08d}",
            title=record.title,
            abstract=abstract,
            claims=claims,
            text=canonical_text(title=record.title, abstract=abstract, claims=claims),
            date=FIRST_DATE + datetime.timedelta(days=int(random.integers(DATE_SPAN_DAYS))),
            cpc=record.cpc[:3],
            embedding=(vector / np.linalg.norm(vector)).astype(np.float32),
            passages=(passages / np.linalg.norm(passages, axis=1, keepdims=True)).astype(np.float32),
        )


def _text(pool: SentencePool, index: int) -> str:
    return pool.flat[index]
