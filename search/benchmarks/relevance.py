"""Known-item evaluation of search quality on the bundled real patents (bench_relevance).

For each document, queries a searcher might derive from it, with that
document as the one right answer:

- claim: one of its dependent claims, pasted whole;
- reworded: the abstract's first sentence with common patent words swapped for
  synonyms and stop words dropped, as someone paraphrasing it would write;
- keywords: its four most distinctive words (highest tf-idf), shuffled;
- paraphrase: a description of its function or problem in other words, written by hand for 320
  of the documents (data/relevance/paraphrases.jsonl; its README says how), sharing no run of
  five words with the document's title, abstract or claims.

Every method answers the same queries: full text, semantic and hybrid as the
site runs them, a BM25 baseline (k1 = 1.2, b = 0.75) computed here over the
same stemmed lexemes PostgreSQL indexes, and hybrid with weighted Reciprocal
Rank Fusion in place of the site's convex combination, for comparison.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection

from search import searching
from search.embedding import embed_query
from search.models import Patent

# The best weighted RRF on this evaluation (k 0 to 60, semantic weight 0.1 to 1, depth 20 to 100).
RRF_K = 1
RRF_SEMANTIC_WEIGHT = 0.2

SYNONYMS = {
    "comprising": "including",
    "comprises": "includes",
    "includes": "has",
    "including": "having",
    "device": "apparatus",
    "apparatus": "device",
    "plurality": "multiple",
    "configured": "adapted",
    "method": "process",
    "system": "arrangement",
    "first": "one",
    "provided": "supplied",
    "disposed": "located",
    "coupled": "connected",
    "connected": "joined",
    "wherein": "where",
    "member": "element",
    "portion": "part",
    "unit": "module",
    "receiving": "getting",
    "determining": "finding",
    "control": "regulate",
    "controller": "control circuit",
    "user": "person",
    "vehicle": "car",
    "image": "picture",
    "signal": "indication",
    "surface": "face",
    "housing": "casing",
}
STOP_WORDS = {"a", "an", "the", "of", "to", "and", "or", "in", "on", "for", "with", "by", "at", "is", "are", "said"}
KINDS = ("claim", "reworded", "keywords", "paraphrase")
HALVES = ("tune", "test")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
PARAPHRASES = settings.BASE_DIR / "data" / "relevance" / "paraphrases.jsonl"
SHARED_RUN = 5  # a paraphrase shares no run of this many words with its target


def paraphrases() -> list[dict[str, str]]:
    """The hand-written paraphrase queries: target (publication number), style, query."""
    return [json.loads(line) for line in PARAPHRASES.read_text().splitlines() if line.strip()]


def shared_runs(query: str, text: str, length: int = SHARED_RUN) -> set[str]:
    """The runs of `length` words (case and punctuation ignored) that the query shares with the text."""

    def runs(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + length]) for i in range(len(words) - length + 1)}

    def words(value: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", value.lower())

    return {" ".join(run) for run in runs(words(query)) & runs(words(text))}


def half(source_id: str) -> str:
    """Which half a document is in: the fusion is tuned on one and reported on the other (stable across imports)."""
    return HALVES[zlib.crc32(source_id.encode()) % 2]


@dataclass(frozen=True)
class KnownItem:
    target: int
    kind: str
    query: str
    half: str = "tune"


@dataclass
class Score:
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of the target, None if not in the top 10
    errors: int = 0

    @property
    def recall_at_10(self) -> float:
        return round(sum(rank is not None for rank in self.ranks) / len(self.ranks), 4)

    @property
    def mrr(self) -> float:
        return round(sum(1 / rank for rank in self.ranks if rank) / len(self.ranks), 4)


class BM25:
    """Okapi BM25 over each document's indexed lexemes and their counts."""

    def __init__(self, documents: dict[int, Counter[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.documents = documents
        self.k1, self.b = k1, b
        self.lengths = {pk: sum(counts.values()) for pk, counts in documents.items()}
        self.average_length = sum(self.lengths.values()) / len(self.lengths)
        frequency: Counter[str] = Counter()
        for counts in documents.values():
            frequency.update(counts.keys())
        total = len(documents)
        self.idf = {term: math.log(1 + (total - n + 0.5) / (n + 0.5)) for term, n in frequency.items()}
        self.postings: dict[str, list[int]] = {}
        for pk, counts in documents.items():
            for term in counts:
                self.postings.setdefault(term, []).append(pk)

    def rank(self, terms: Iterable[str], limit: int = 10) -> list[int]:
        scores: Counter[int] = Counter()
        for term in set(terms):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for pk in self.postings[term]:
                tf = self.documents[pk][term]
                norm = self.k1 * (1 - self.b + self.b * self.lengths[pk] / self.average_length)
                scores[pk] += idf * tf * (self.k1 + 1) / (tf + norm)
        return [pk for pk, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]]

    def distinctive(self, pk: int, count: int) -> list[str]:
        counts = self.documents[pk]
        return sorted(counts, key=lambda term: (-counts[term] * self.idf[term], term))[:count]


def indexed_lexemes() -> dict[int, Counter[str]]:
    """Each document's lexemes with their number of positions, read from the search vector itself."""
    documents: dict[int, Counter[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, lexeme, coalesce(array_length(positions, 1), 1)"
            " FROM search_patent, unnest(search_vector) AS entry(lexeme, positions, weights)"
        )
        for pk, lexeme, count in cursor.fetchall():
            documents.setdefault(pk, Counter())[lexeme] = count
    return documents


def query_lexemes(texts: list[str]) -> list[list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ord, tsvector_to_array(to_tsvector('english', text))"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS queries(text, ord) ORDER BY ord",
            [texts],
        )
        return [list(lexemes) for _, lexemes in cursor.fetchall()]


def known_items(bm25: BM25, seed: int = 0) -> list[KnownItem]:
    random = np.random.default_rng(seed)
    written: dict[str, list[str]] = {}
    for paraphrase in paraphrases():
        written.setdefault(paraphrase["target"], []).append(paraphrase["query"])
    items = []
    for patent in Patent.objects.order_by("id").only("id", "source_id", "abstract", "claims"):
        side = half(patent.source_id or str(patent.id))
        dependent = [claim["text"] for claim in patent.claims if re.search(r"\bof claim \d", claim["text"])]
        if dependent:
            items.append(KnownItem(patent.id, "claim", dependent[int(random.integers(len(dependent)))], side))
        items.append(KnownItem(patent.id, "reworded", reword(first_sentence(patent.abstract)), side))
        keywords = bm25.distinctive(patent.id, 4)
        random.shuffle(keywords)
        items.append(KnownItem(patent.id, "keywords", " ".join(_surface_words(patent, keywords)), side))
        items += [KnownItem(patent.id, "paraphrase", query, side) for query in written.get(patent.source_id, [])]
    return items


def first_sentence(text: str) -> str:
    return re.split(r"(?<=\.)\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]


def reword(sentence: str, limit: int = 25) -> str:
    words = [word.lower() for word in _WORD.findall(sentence)]
    kept = [SYNONYMS.get(word, word) for word in words if word not in STOP_WORDS]
    return " ".join(kept[:limit])


def _surface_words(patent: Patent, lexemes: list[str]) -> list[str]:
    """A word of the document for each lexeme (the stem itself is not always a word)."""
    words = {}
    text = f"{patent.abstract} {' '.join(claim['text'] for claim in patent.claims)}"
    for word in _WORD.findall(text):
        lower = word.lower()
        for lexeme in lexemes:
            if lexeme not in words and lower.startswith(lexeme[: max(3, len(lexeme) - 1)]):
                words[lexeme] = lower
    return [words.get(lexeme, lexeme) for lexeme in lexemes]


def rank_of(target: int, ranking: list[int]) -> int | None:
    return ranking.index(target) + 1 if target in ranking[:10] else None


def evaluate(items: list[KnownItem], methods: dict[str, Callable[[str], list[int]]]) -> dict[str, dict[str, Score]]:
    """Scores per method, per kind of query and overall ("all")."""
    scores = {name: {kind: Score() for kind in (*KINDS, "all")} for name in methods}
    for item in items:
        for name, method in methods.items():
            try:
                rank = rank_of(item.target, method(item.query))
            except searching.SearchError:
                rank = None
                scores[name]["all"].errors += 1
            scores[name][item.kind].ranks.append(rank)
            scores[name]["all"].ranks.append(rank)
    return scores


def site_method(mode: searching.Mode) -> Callable[[str], list[int]]:
    def run(query: str) -> list[int]:
        return [hit.patent.pk for hit in searching.search(query, mode=mode, limit=10).hits]

    return run


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float] | None = None, k: float = RRF_K
) -> list[tuple[int, float]]:
    """Fuse rankings of (id, score) by sum of weight/(k + rank); ties go to the lower id for a stable order."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, (patent_id, _score) in enumerate(ranking, start=1):
            scores[patent_id] = scores.get(patent_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def hybrid_by_rrf(query: str) -> list[int]:
    """The site's two rankings for a plain query, fused by weighted RRF instead."""
    filters = searching.Filters()
    text = searching.keyword_ranking(query, filters)
    semantic = searching.semantic_ranking(embed_query(query), filters, depth=searching.FUSION_DEPTH)
    fused = reciprocal_rank_fusion([text, semantic], weights=(1.0, RRF_SEMANTIC_WEIGHT))
    return [patent_id for patent_id, _ in fused[:10]]
