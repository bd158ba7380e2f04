"""Search: full-text (examiners' syntax or plain words), semantic, and hybrid, with filters.

Views and the API call `search()`, `similar()` and `search_by_text()`; the
query language itself lives in search/query.py.

How each mode stays fast at a million documents:

- Full text: the GIN index finds the documents with the query's words;
  ranking reads each one's vector out of TOAST, so when the planner expects
  at most RANK_CANDIDATES matches all are ranked on their whole text. Past
  that, ranking goes in tiers: documents matching in their title and
  abstract (a small vector kept in the row), then the rest, TIER_CANDIDATES
  in all. Such a query says so: its total is the planner's estimate, and the
  examiner narrows it. Phrases and proximity are checked on at most
  CHECK_CANDIDATES documents with the words.
- Semantic: the documents' HNSW index finds the candidates by mean vector,
  with pgvector 0.8's iterative scan when filters apply, so a WHERE clause
  can't starve the result; they are ranked by their best passage. When the filters leave
  few documents (at most EXACT_SEARCH_ROWS), exact distances over just those
  are both faster and perfectly recalled, so that is what runs.
- Plain words (hybrid's text side, and full text when no document has them
  all): BM25 over the candidates holding the rarest words, with document
  frequencies from the planner's statistics (no counting at query time).
- Hybrid: a convex combination of the two rankings' scaled scores over their
  top FUSION_DEPTH each, leaning on meaning as the query's words are missing
  from its best keyword match (one more read, of that document's vector).
"""

from __future__ import annotations

import datetime
import html
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import BooleanField, Min, QuerySet
from django.db.models.expressions import RawSQL
from pgvector.django import CosineDistance
from psycopg.errors import QueryCanceled

from search import highlighting
from search import query as query_language
from search.embedding import embed_query
from search.models import LIST_FIELDS, SEARCH_CONFIG, Origin, Patent, PatentPassage, SearchTerm

Mode = Literal["fulltext", "semantic", "hybrid"]
Sort = Literal["relevance", "date"]
MODES: tuple[Mode, ...] = ("fulltext", "semantic", "hybrid")

RANK_CANDIDATES = 2_000
CHECK_CANDIDATES = 5_000  # documents read to find a phrase or proximity match among those with its words
TIER_CANDIDATES = 1_000  # documents ranked in tiers when more than RANK_CANDIDATES match (MAX_RESULTS)
# Words this share of documents has are found faster by reading the table than through the index
# (whose bitmap costs as much as the words' posting lists are long). Checking a row costs a TOAST
# read of the whole-text vector, and much less for the in-row one: at 1M documents, a 6% pair of
# words in titles and abstracts took 12 ms to read from the table against 45 ms through the index.
# A query for any of some words reads about as many postings as it matches, so its index bitmap
# stays cheaper up to a larger share.
SEQUENTIAL_SHARE = 0.3
SEQUENTIAL_SHARE_IN_ROW = 0.02
SEQUENTIAL_SHARE_IN_ROW_ANY_WORD = 0.05
MAX_RESULTS = 1_000  # the deepest result a page may show, and the most an export holds
MAX_PAGE = 100
HNSW_EF_SEARCH = 300  # bench_search, 1M: recall@10 0.964 at 300, 0.971 at 400, 0.976 at 500 (ef_construction 128)
HNSW_MAX_SCAN_TUPLES = 40_000
# Documents nearest by mean vector whose passages semantic search compares (see semantic_ranking),
# at least: on bench_relevance's tune half, 50 scored as well as 100 or 200, and 30 lost claims.
RERANKED_CANDIDATES = 50
EXACT_SEARCH_ROWS = 20_000
FUSION_DEPTH = 100
# Hybrid's weight on meaning. A query in a document's own words (its best keyword match has at least
# the second of OTHER_WORDS_COVERAGE of its rare words, idf-weighted) keeps SEMANTIC_WEIGHT; one in
# other words, whose best match has at most the first, gets OTHER_WORDS_SEMANTIC_WEIGHT, and its meaning
# is then scored by the whole document as much as by its best passage (OTHER_WORDS_MEAN_SHARE): a
# description of what an invention does matches the whole more than any one claim. Between the two
# bounds both move linearly. All four were chosen on bench_relevance's tune half (every query type,
# the hand-written paraphrases with them) with an embedding model adapted on the other half's
# documents, so that neither the rule nor the model had seen what they were judged on; they are
# reported on the test half with the bundled model (adapted on the tune half). The README has the
# sweep.
SEMANTIC_WEIGHT = 0.5
OTHER_WORDS_SEMANTIC_WEIGHT = 0.7
OTHER_WORDS_COVERAGE = (0.2, 0.6)
OTHER_WORDS_MEAN_SHARE = 0.5
KEYWORD_CANDIDATES = 1_000  # documents the candidate words are expected to match
KEYWORD_RESCORED = 200
# The rarest 24: 12 lost hand-written paraphrases (18 distinct words on average) 0.07 MRR in
# bench_relevance; 20 or 30 were within 0.005 of every word.
KEYWORD_SCORED_WORDS = 24
FREQUENCIES_TTL = 300.0
# Hybrid embeds its query on one of these while the database ranks its words, so that the forward pass
# and the keyword statement share the wall clock instead of adding up: at 1M documents, 17 and 24 ms
# (p50) of hybrid's 80, which then took 63.
_QUERY_EMBEDDING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query-embedding")
MAX_TEXT_LENGTH = 200_000
# The longest any one search statement may run. The query language's bounds (nesting, terms, the
# candidate limits above) keep every query we could construct far below it; this is the backstop.
STATEMENT_TIMEOUT_MS = 5_000

_START, _STOP = "\x02", "\x03"  # ts_headline markers, HTML-escaped text goes between them


# A subclass (H01M), or a group prefix of one (H01M10, H01M10/05): what a CPC filter may name.
CPC_CODE = re.compile(r"[A-HY]\d\d[A-Z](?:\d{1,4}(?:/\d{0,6})?)?")


def cpc_code(text: str) -> str:
    """A CPC code as typed ("g02b 23") as stored ("G02B23")."""
    return text.strip().upper().replace(" ", "")


# A page's marks come from a tsquery (ts_headline; "" for none) or from the parsed query itself.
Highlight = str | query_language.Node


class SearchError(ValueError):
    """A request we can't answer, with a message for the person who made it."""


@dataclass(frozen=True)
class Filters:
    """Published strictly before / after a date, origin, run, minimum quality, CPC subclass or group."""

    before: datetime.date | None = None
    after: datetime.date | None = None
    origin: str | None = None
    run: int | None = None
    min_quality: float | None = None
    classification: str | None = None

    def __post_init__(self) -> None:
        if self.origin is not None and self.origin not in Origin.values:
            raise SearchError(f"origin must be one of: {', '.join(Origin.values)}")
        if self.classification and not CPC_CODE.fullmatch(cpc_code(self.classification)):
            raise SearchError(f"classification: {self.classification[:40]!r} is not a CPC subclass or group")
        # after >= before is a window no document is in: it matches nothing (the search form says so first).

    def __bool__(self) -> bool:
        return any(value is not None for value in vars(self).values())

    def apply(self, patents: QuerySet[Patent]) -> QuerySet[Patent]:
        if self.before:
            patents = patents.filter(publication_date__lt=self.before)
        if self.after:
            patents = patents.filter(publication_date__gt=self.after)
        if self.origin:
            patents = patents.filter(origin=self.origin)
        if self.run is not None:
            patents = patents.filter(generation_run_id=self.run)
        if self.min_quality is not None:
            patents = patents.filter(quality_score__gte=self.min_quality)
        if self.classification:
            code = cpc_code(self.classification)
            if len(code) == 4:
                patents = patents.filter(cpc_subclasses__contains=[code])
            else:  # a group such as H01M10/052: the subclass index narrows, the prefix decides
                patents = patents.filter(cpc_subclasses__contains=[code[:4]]).filter(
                    RawSQL(
                        "EXISTS (SELECT 1 FROM unnest(cpc) AS code WHERE code LIKE %s)",
                        [code.replace("%", "") + "%"],
                        output_field=BooleanField(),
                    )
                )
        return patents


@dataclass
class Hit:
    patent: Patent
    score: float
    snippet: str  # HTML: escaped text with <mark> around matched words
    title_html: str = ""  # the title with <mark> around the words that matched there, when any did


@dataclass
class Results:
    mode: Mode
    hits: list[Hit]
    total: int
    total_is_exact: bool
    offset: int
    limit: int
    notes: list[str] = field(default_factory=list)

    @property
    def last_position(self) -> int:
        return self.offset + len(self.hits)

    @property
    def mode_label(self) -> str:
        return {"fulltext": "Keyword", "semantic": "Semantic", "hybrid": "Hybrid"}[self.mode]

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < min(self.total, MAX_RESULTS)


def default_mode(text: str) -> Mode:
    """Examiners' syntax means full text; plain language gets hybrid."""
    try:
        return "fulltext" if query_language.uses_examiner_syntax(text) else "hybrid"
    except query_language.QuerySyntaxError:
        return "fulltext"  # let the parser report the problem


def search(
    text: str,
    *,
    mode: Mode | None = None,
    filters: Filters | None = None,
    sort: Sort = "relevance",
    offset: int = 0,
    limit: int = 20,
    default_operator: str = "AND",
    snippets: bool = True,
) -> Results:
    """One page of results for a query typed in the search box or sent to the API.

    `limit` is at most MAX_PAGE, except for exports (MAX_RESULTS, without snippets).
    """
    text = text.strip()
    try:
        query_language.check_query(text)
    except query_language.QuerySyntaxError as error:
        raise SearchError(str(error)) from None
    filters = filters or Filters()
    mode = mode or default_mode(text)
    _check_page(offset, limit, MAX_PAGE if snippets else MAX_RESULTS)

    def marked(tsquery: Highlight) -> Highlight:
        # Without snippets, results show the abstract's first words: no ts_headline at all.
        return tsquery if snippets else ""

    if mode == "semantic":
        vector = embed_query(_check_pasted_text(text))
        ranked = semantic_ranking(vector, filters, depth=offset + limit)
        total, exact = _ranked_total(ranked, offset + limit, filters)
        return _page(
            mode,
            ranked,
            highlight=marked(_plain_tsquery(text)),
            offset=offset,
            limit=limit,
            sort=sort,
            total=total,
            total_is_exact=exact,
        )
    if mode == "hybrid":
        return _hybrid(text, filters, sort, offset, limit, default_operator, marked)
    compiled = _compile(text, default_operator)
    if sort == "date":
        return _by_date(compiled, filters, offset, limit, marked(_marks(compiled)))
    ranked, total, exact = fulltext_ranking(compiled, filters)
    if not ranked and _bare_words(text):
        # Plain words that no document has all of: rank the documents with the most telling ones.
        ranked = keyword_ranking(text, filters, depth=offset + limit)
        results = _page(mode, ranked, highlight=marked(_plain_tsquery(text)), offset=offset, limit=limit, sort=sort)
        results.notes.append("No document contains all of these words; these contain the rarest of them.")
        return results
    results = _page(
        mode,
        ranked,
        highlight=marked(_marks(compiled)),
        offset=offset,
        limit=limit,
        sort=sort,
        total=total,
        total_is_exact=exact,
    )
    if not exact:
        results.notes.append(
            f"More than {RANK_CANDIDATES:,} documents match, too many to rank them all: up to {TIER_CANDIDATES:,} "
            "are ranked, those that match in the title or abstract first. Add terms or filters to narrow the search."
        )
    return results


def _hybrid(
    text: str,
    filters: Filters,
    sort: Sort,
    offset: int,
    limit: int,
    default_operator: str,
    marked: Callable[[Highlight], Highlight],
) -> Results:
    """Fuse the text and semantic rankings; text that isn't valid examiners' syntax counts as plain words."""
    try:
        compiled = _compile(text, default_operator)
        plain = not query_language.uses_examiner_syntax(text)
    except SearchError:
        plain = True
    mode: Mode = "hybrid"
    vector = _QUERY_EMBEDDING.submit(embed_query, text)
    other_words = 0.0  # examiners' syntax names the words that must be there: the documents' own
    if plain:
        words = query_words(text)
        ranked_text = ranking_by_words(words, filters)
        other_words = other_words_share(lexical_coverage(words, ranked_text[0][0]) if ranked_text else 0.0)
    else:
        ranked_text = fulltext_ranking(compiled, filters)[0]
    semantic_weight, mean_share = hybrid_weights(other_words)
    ranked_vector = semantic_ranking(vector.result(), filters, depth=FUSION_DEPTH, mean_share=mean_share)
    fused = convex_fusion(ranked_text[:FUSION_DEPTH], ranked_vector, semantic_weight)
    highlight = _plain_tsquery(text) if plain else _marks(compiled)
    return _page(mode, fused, highlight=marked(highlight), offset=offset, limit=limit, sort=sort)


def similar(patent: Patent, *, limit: int = 10, filters: Filters | None = None) -> list[Hit]:
    """The documents nearest to this one ("more like this")."""
    if patent.embedding is None:
        return []
    ranked = semantic_ranking(patent.embedding, filters or Filters(), depth=limit + 1, exclude=patent.pk)
    return _page(
        "semantic", ranked[:limit], highlight="", offset=0, limit=limit, sort="relevance", total=len(ranked)
    ).hits


def search_by_text(text: str, *, filters: Filters | None = None, offset: int = 0, limit: int = 20) -> Results:
    """The documents closest to a pasted claim or whole draft application."""
    _check_page(offset, limit)
    vector = embed_query(_check_pasted_text(text))
    filters = filters or Filters()
    ranked = semantic_ranking(vector, filters, depth=offset + limit)
    total, exact = _ranked_total(ranked, offset + limit, filters)
    return _page(
        "semantic",
        ranked,
        highlight=_plain_tsquery(text),
        offset=offset,
        limit=limit,
        sort="relevance",
        total=total,
        total_is_exact=exact,
    )


def other_words_share(coverage: float) -> float:
    """0 for a query in a document's own words, 1 for one wholly in other words (OTHER_WORDS_COVERAGE)."""
    low, high = OTHER_WORDS_COVERAGE
    return min(1.0, max(0.0, (high - coverage) / (high - low)))


def hybrid_weights(other_words: float) -> tuple[float, float]:
    """(weight on meaning, share of meaning scored by the mean vector) for a query this much in other words."""
    weight = SEMANTIC_WEIGHT + (OTHER_WORDS_SEMANTIC_WEIGHT - SEMANTIC_WEIGHT) * other_words
    return weight, OTHER_WORDS_MEAN_SHARE * other_words


def blended(
    by_passage: Sequence[tuple[int, float]], by_mean: Sequence[tuple[int, float]], mean_share: float
) -> list[tuple[int, float]]:
    """Documents by (1 - s) * best-passage similarity + s * mean-vector similarity, nearest first.

    A document missing from `by_mean` keeps its passage similarity. Ties go to the lower id.
    """
    if not mean_share:
        return list(by_passage)
    mean = dict(by_mean)
    scores = [
        (patent_id, (1.0 - mean_share) * score + mean_share * mean.get(patent_id, score))
        for patent_id, score in by_passage
    ]
    return sorted(scores, key=lambda item: (-item[1], item[0]))


def convex_fusion(
    text: Sequence[tuple[int, float]], semantic: Sequence[tuple[int, float]], semantic_weight: float = SEMANTIC_WEIGHT
) -> list[tuple[int, float]]:
    """Fuse two rankings of (id, score) by (1 - w) * text + w * semantic, each score min-max scaled to 0..1.

    A document missing from a ranking scores 0 there. Ties go to the lower id,
    for a stable order. Scores, unlike Reciprocal Rank Fusion's ranks, keep
    how far apart the documents are: a clear lexical winner stays first,
    while near-ties are settled by meaning (bench_relevance measures both).
    """
    scores: dict[int, float] = {}
    for ranking, weight in ((text, 1.0 - semantic_weight), (semantic, semantic_weight)):
        if not ranking:
            continue
        values = [score for _, score in ranking]
        low, spread = min(values), max(values) - min(values)
        for patent_id, score in ranking:
            scaled = (score - low) / spread if spread else 1.0
            scores[patent_id] = scores.get(patent_id, 0.0) + weight * scaled
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


# --- Full text --------------------------------------------------------------


def _bare_words(text: str) -> bool:
    """Only words: no syntax, no "phrase", no -exclusion (those ask for exactly what they say)."""
    return not query_language.uses_examiner_syntax(text) and '"' not in text and not re.search(r"(^|\s)-\w", text)


def _compile(text: str, default_operator: str) -> query_language.CompiledQuery:
    try:
        tree = query_language.parse(text, default_operator=default_operator)
        return replace(query_language.compile_query(tree, _expand), tree=tree)
    except query_language.QuerySyntaxError as error:
        raise SearchError(str(error)) from None


def _expand(pattern: str) -> list[str]:
    """One word per stem among the corpus words matching a truncation (the trigram index answers)."""
    rows = (
        SearchTerm.objects.filter(word__regex=pattern)
        .values("lexeme")
        .annotate(word=Min("word"))
        .order_by("lexeme")[: query_language.MAX_EXPANSIONS + 1]
    )
    # Words, not stems: to_tsquery stems them the way it stemmed the documents.
    return [row["word"] for row in rows]


def _matching(compiled: query_language.CompiledQuery, filters: Filters) -> QuerySet[Patent]:
    return filters.apply(Patent.objects.all()).matching(compiled.tsquery, compiled.condition, compiled.parameters)


def fulltext_ranking(
    compiled: query_language.CompiledQuery, filters: Filters
) -> tuple[list[tuple[int, float]], int, bool]:
    """(id, rank) best first; the total; whether it is exact.

    When the planner expects at most RANK_CANDIDATES matches, every match is
    ranked on its whole text. More than that can't be ranked in time, so
    ranking goes in tiers, as search engines' tiered indexes do: first the
    documents that match in their title and abstract (their small vector
    lives in the table row), ranked there; then, if those are too few, the
    rest, ranked on their whole text: TIER_CANDIDATES in all, and the total
    is estimated.
    """
    if compiled.matches_nothing:
        return [], 0, True
    documents = filters.apply(Patent.objects.all())
    estimate = _estimated_rows(_with_words(documents, "search_vector", compiled))
    if estimate <= RANK_CANDIDATES:
        ranked, complete = _ranked_tier(compiled, documents, "search_vector", RANK_CANDIDATES, estimate=estimate)
        if complete:
            return ranked, len(ranked), True
        return ranked, max(estimate, RANK_CANDIDATES + 1), False
    front, complete = _ranked_tier(compiled, documents, "title_abstract_vector", TIER_CANDIDATES, TIER_CANDIDATES)
    rest: list[tuple[int, float]] = []
    if complete:  # every title-and-abstract match is in, and there is room for more
        rest, complete = _ranked_tier(
            compiled,
            documents.exclude(pk__in=[patent_id for patent_id, _ in front]),
            "search_vector",
            TIER_CANDIDATES - len(front),
            TIER_CANDIDATES,
            estimate=estimate,
        )
    ranked = front + rest
    if complete:
        return ranked, len(ranked), True
    return ranked, max(estimate, RANK_CANDIDATES + 1), False


def _with_words(documents: QuerySet[Patent], vector: str, compiled: query_language.CompiledQuery) -> QuerySet[Patent]:
    """The documents whose `vector` has the query's words: its GIN index answers without reading them."""
    return documents.filter(
        RawSQL(f"{vector} @@ to_tsquery(%s::regconfig, %s)", [SEARCH_CONFIG, compiled.words], BooleanField())
    )


def _ranked_tier(
    compiled: query_language.CompiledQuery,
    documents: QuerySet[Patent],
    vector: str,
    limit: int,
    reads: int = CHECK_CANDIDATES,
    *,
    estimate: int | None = None,
) -> tuple[list[tuple[int, float]], bool]:
    """Up to `limit` of `documents` that match in `vector`, ranked on it; whether they are all the matches.

    The GIN index finds the documents with the words. When matching needs
    more (positions, fields, exclusions, sentences), at most `reads` of them
    are read and checked.
    """
    whole_text = vector == "search_vector"
    candidates = _with_words(documents, vector, compiled)
    if estimate is None:
        estimate = _estimated_rows(candidates)
    columns = ["id", vector]
    checks = []
    if compiled.uses_positions:
        checks.append((f"{vector} @@ to_tsquery(%s::regconfig, %s)", [SEARCH_CONFIG, compiled.tsquery]))
    if not whole_text and not compiled.monotone:
        # A match in the title and abstract is a match of the whole unless the query excludes something.
        checks.append(("search_vector @@ to_tsquery(%s::regconfig, %s)", [SEARCH_CONFIG, compiled.tsquery]))
        columns.append("search_vector")
    if compiled.condition:
        checks.append((compiled.condition, compiled.parameters))
        columns += ["sentence_vector", "paragraph_vector"]
    bound = reads if checks else limit
    scanned_sql, scanned_parameters = candidates.values(*columns)[:bound].query.sql_with_params()
    check = " AND ".join(sql for sql, _ in checks) or "TRUE"
    with scoped_settings() as cursor:
        _prefer_index(cursor, estimate, SEQUENTIAL_SHARE if whole_text else SEQUENTIAL_SHARE_IN_ROW)
        cursor.execute(
            f"""
            WITH scanned AS MATERIALIZED ({scanned_sql})
            SELECT id, ts_rank({vector}, to_tsquery(%s::regconfig, %s), 1)
            FROM (SELECT * FROM scanned WHERE {check} LIMIT %s) AS matching
            UNION ALL SELECT NULL, count(*) FROM scanned
            """,
            [
                *scanned_parameters,
                SEARCH_CONFIG,
                compiled.tsquery,
                *(parameter for _, parameters in checks for parameter in parameters),
                limit,
            ],
        )
        rows = cursor.fetchall()
    scanned = int(rows.pop()[1])
    ranked = sorted(((row[0], float(row[1])) for row in rows), key=lambda item: (-item[1], -item[0]))
    return ranked, scanned < bound and len(ranked) < limit


@contextmanager
def scoped_settings() -> Iterator[CursorWrapper]:
    """A cursor whose SET LOCAL / set_config(..., true) settings end with the block, under a statement timeout.

    Outside a transaction (a web request), the block's own transaction ends them. Inside one, a
    SET LOCAL would hold until the outermost transaction ends (in a generation batch, for every
    statement after the search), so there the block runs in a savepoint that is rolled back at the
    end (it only reads, and its rows are fetched inside). Taken for every block, the savepoint's two
    round trips cost semantic search 1-2 ms at p95 on 100,000 documents (bench_search).
    """
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        savepoint = transaction.savepoint() if nested else None
        try:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)])
            yield cursor
        except OperationalError as error:
            if isinstance(error.__cause__, QueryCanceled):
                raise SearchError(
                    f"this search ran longer than {STATEMENT_TIMEOUT_MS / 1000:g} s and was stopped. Narrow it: "
                    "fewer OR-alternatives or truncations (inflat$ is every word that starts with inflat), a field "
                    "(ti:, ab:, clm:) or a date filter."
                ) from None
            raise
        finally:
            if savepoint is not None:
                transaction.savepoint_rollback(savepoint)


def _prefer_index(cursor: CursorWrapper, estimate: int, share: float = SEQUENTIAL_SHARE) -> None:
    """Read the GIN index unless many documents match, else the table, for this transaction.

    The planner doesn't count reading each vector out of TOAST into a
    sequential scan's cost, so it scans the table for words a few percent of
    documents have. It is right for words nearly every document has: then the
    first rows match and building the index's bitmap would cost more. A
    bitmap that fits in work_mem stays exact, so no vector is re-read.
    """
    cursor.execute(
        "WITH choice AS (SELECT %s < %s * (SELECT reltuples FROM pg_class WHERE oid = 'search_patent'::regclass)"
        " AS index) SELECT set_config('work_mem', '32MB', true),"
        " set_config('enable_seqscan', CASE WHEN index THEN 'off' ELSE 'on' END, true),"
        " set_config('enable_bitmapscan', CASE WHEN index THEN 'on' ELSE 'off' END, true) FROM choice",
        [estimate, share],
    )


def _estimated_rows(patents: QuerySet[Patent]) -> int:
    sql, parameters = patents.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def _by_date(
    compiled: query_language.CompiledQuery, filters: Filters, offset: int, limit: int, highlight: Highlight
) -> Results:
    """Newest first: every match is in order, so the total is counted (up to MAX_RESULTS + 1)."""
    if compiled.matches_nothing:
        return Results("fulltext", [], 0, True, offset, limit)
    matching = _matching(compiled, filters)
    page = list(matching.order_by("-publication_date", "-id").values_list("id", flat=True)[offset : offset + limit])
    counted = matching.values("id")[: MAX_RESULTS + 1].count()
    exact = counted <= MAX_RESULTS
    total = counted if exact else max(_estimated_rows(matching), counted)
    results = _page(
        "fulltext",
        [(patent_id, 0.0) for patent_id in page],
        highlight=highlight,
        offset=0,
        limit=limit,
        sort="date",
        total=total,
        total_is_exact=exact,
    )
    results.offset = offset
    return results


# --- Keywords (plain language) ----------------------------------------------


@dataclass(frozen=True)
class LexemeFrequencies:
    """Share of documents containing each common lexeme, from the planner's statistics (pg_stats)."""

    fractions: dict[str, float]
    floor: float  # every lexeme not listed is rarer than this
    documents: int
    average_length: float  # distinct lexemes per document
    read_at: float

    def fraction(self, lexeme: str) -> float:
        return self.fractions.get(lexeme, self.floor / 2)

    def idf(self, lexeme: str) -> float:
        """BM25's inverse document frequency."""
        documents = max(self.documents, 1)
        matching = self.fraction(lexeme) * documents
        return math.log(1 + (documents - matching + 0.5) / (matching + 0.5))


_frequencies: dict[str, LexemeFrequencies] = {}


def lexeme_frequencies() -> LexemeFrequencies:
    """Read once per FREQUENCIES_TTL seconds per database; ANALYZE (autovacuum) keeps them current."""
    database = connection.settings_dict["NAME"]
    cached = _frequencies.get(database)
    if cached and time.monotonic() - cached.read_at < FREQUENCIES_TTL:
        return cached
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs,"
            " (SELECT reltuples FROM pg_class WHERE relname = 'search_patent')"
            " FROM pg_stats WHERE tablename = 'search_patent' AND attname = 'search_vector'"
        )
        row = cursor.fetchone()
        sample = "TABLESAMPLE SYSTEM (1)" if row and row[2] > 200_000 else ""
        cursor.execute(f"SELECT avg(length(search_vector)) FROM search_patent {sample}")
        average_length = float(cursor.fetchone()[0] or 1.0)
    if row is None or row[0] is None:  # never analysed: every word counts the same
        fresh = LexemeFrequencies({}, 0.01, 0, average_length, time.monotonic())
    else:
        lexemes, frequencies, documents = row
        listed = frequencies[: len(lexemes)]  # three summary numbers follow the per-lexeme ones
        fresh = LexemeFrequencies(
            dict(zip(lexemes, listed, strict=True)), min(listed), int(documents), average_length, time.monotonic()
        )
    _frequencies[database] = fresh
    return fresh


def keyword_ranking(text: str, filters: Filters, *, depth: int = FUSION_DEPTH) -> list[tuple[int, float]]:
    """Documents with the query's words, ranked by BM25 (see ranking_by_words)."""
    return ranking_by_words(query_words(text), filters, depth=depth)


def query_words(text: str) -> list[str]:
    """The query's lexemes, rarest first."""
    frequencies = lexeme_frequencies()
    return sorted(_lexemes(text), key=lambda lexeme: (frequencies.fraction(lexeme), lexeme))


def ranking_by_words(rarest: list[str], filters: Filters, *, depth: int = FUSION_DEPTH) -> list[tuple[int, float]]:
    """Documents with these words (rarest first), ranked by BM25 (search_bm25, migration 0009).

    Candidates are the documents with the rarest words (enough of them to
    expect KEYWORD_CANDIDATES matches, at most RANK_CANDIDATES read; when
    more are expected, TIER_CANDIDATES of those with the words in their title
    or abstract). ts_rank, one fast call per document, picks the
    KEYWORD_RESCORED with the most of those words, and BM25 over the
    KEYWORD_SCORED_WORDS rarest words of the query orders them.
    """
    if not rarest:
        return []
    frequencies = lexeme_frequencies()
    chosen: list[str] = []
    expected = 0.0
    for lexeme in rarest:
        chosen.append(lexeme)
        expected += frequencies.fraction(lexeme) * frequencies.documents
        if expected >= KEYWORD_CANDIDATES:
            break
    any_chosen = " | ".join(map(_tsquery_lexeme, chosen))
    scored = rarest[:KEYWORD_SCORED_WORDS]
    bm25 = _BM25Query(scored, frequencies, filters, any_chosen, depth)
    if expected <= RANK_CANDIDATES or frequencies.documents <= RANK_CANDIDATES:
        return bm25.ranking("search_vector", any_chosen, RANK_CANDIDATES, expected)
    # Too many candidates to read them all: first those with the words in their title or abstract,
    # by how many of the query's words are there (that vector is in the row), as full text does.
    ranked = bm25.ranking("title_abstract_vector", " | ".join(map(_tsquery_lexeme, scored)), TIER_CANDIDATES, expected)
    if len(ranked) < depth:  # the rare words are in few titles and abstracts: add from the whole texts
        found = {patent_id for patent_id, _ in ranked}
        more = bm25.ranking("search_vector", any_chosen, TIER_CANDIDATES, expected)
        ranked = sorted(ranked + [hit for hit in more if hit[0] not in found], key=lambda hit: (-hit[1], -hit[0]))
    return ranked[:depth]


def lexical_coverage(rarest: list[str], patent_id: int) -> float:
    """The share of the query's scored words (`rarest` first; weighted by idf) that this document has.

    1.0 when the query is in the document's own words; a description in other words
    leaves most of its words out of even the best keyword match (bench_relevance's
    hand-written paraphrases: a median of 0.38, against 1.0 for claims and keywords).
    """
    frequencies = lexeme_frequencies()
    scored = rarest[:KEYWORD_SCORED_WORDS]
    if not scored:
        return 0.0
    idfs = [frequencies.idf(lexeme) for lexeme in scored]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(idf) FILTER (WHERE search_vector @@ term), 0)"
            " FROM search_patent, unnest(%s::tsquery[], %s::float8[]) AS words(term, idf) WHERE id = %s",
            [[_tsquery_lexeme(lexeme) for lexeme in scored], idfs, patent_id],
        )
        found = float(cursor.fetchone()[0])
    return found / sum(idfs)


@dataclass(frozen=True)
class _BM25Query:
    """BM25 of the `scored` words over documents with a chosen word, the best by ts_rank first."""

    scored: list[str]
    frequencies: LexemeFrequencies
    filters: Filters
    any_chosen: str
    depth: int

    def ranking(self, vector: str, first_by: str, reads: int, expected: float) -> list[tuple[int, float]]:
        candidates = self.filters.apply(Patent.objects.all()).filter(
            RawSQL(f"{vector} @@ %s::tsquery", [self.any_chosen], output_field=BooleanField())
        )
        columns = dict.fromkeys(["id", "search_vector", vector])
        sql, parameters = candidates.values(*columns).query.sql_with_params()
        with scoped_settings() as cursor:
            if vector == "search_vector":
                _prefer_index(cursor, round(expected))
            else:  # `expected` counts whole texts; the planner knows titles and abstracts
                _prefer_index(cursor, _estimated_rows(candidates), SEQUENTIAL_SHARE_IN_ROW_ANY_WORD)
            # `|| ''` hands search_bm25 the vector read once, instead of once for each of its words.
            cursor.execute(
                f"""
                SELECT id, search_bm25(search_vector || ''::tsvector, %s::tsquery[], %s::float8[], %s) AS score
                FROM (
                    SELECT id, search_vector FROM ({sql} LIMIT %s) AS candidates
                    ORDER BY ts_rank({vector}, %s::tsquery, 1) DESC, id DESC LIMIT %s
                ) AS best
                ORDER BY score DESC, id DESC LIMIT %s
                """,
                [
                    [_tsquery_lexeme(lexeme) for lexeme in self.scored],
                    [self.frequencies.idf(lexeme) for lexeme in self.scored],
                    self.frequencies.average_length,
                    *parameters,
                    reads,
                    first_by,
                    max(KEYWORD_RESCORED, self.depth),
                    self.depth,
                ],
            )
            return [(row[0], float(row[1])) for row in cursor.fetchall()]


def key_terms(patent: Patent, *, limit: int = 6) -> list[str]:
    """The words that most distinguish a document: sublinear term frequency (1 + ln tf) times BM25's idf.

    Sublinear, or "left" and "right", said forty times in any mechanical claim set, would outweigh
    the rarer words that name the invention. Counted on lexemes (so "cartridge" and "cartridges" are
    one term) and shown as the word form the document uses most; a term must occur at least twice.
    Lexemes the planner statistics don't list share their floor, so among them the most frequent in
    the document win.
    """
    words = Counter(re.findall(r"[a-z][a-z-]{3,}", patent.text.lower()))
    lexeme_of = dict(SearchTerm.objects.filter(word__in=list(words)).values_list("word", "lexeme"))
    counts: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for word, count in words.items():
        if lexeme := lexeme_of.get(word):  # stop words have none
            counts[lexeme] += count
            forms.setdefault(lexeme, Counter())[word] += count
    frequencies = lexeme_frequencies()
    scored = sorted(
        (((1 + math.log(count)) * frequencies.idf(lexeme), lexeme) for lexeme, count in counts.items() if count >= 2),
        key=lambda item: (-item[0], item[1]),
    )
    return [forms[lexeme].most_common(1)[0][0] for _, lexeme in scored[:limit]]


def _lexemes(text: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", [SEARCH_CONFIG, text])
        return list(cursor.fetchone()[0])


def _tsquery_lexeme(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


# --- Semantic ---------------------------------------------------------------


def semantic_ranking(
    vector: Sequence[float] | np.ndarray,
    filters: Filters,
    *,
    depth: int,
    exclude: int | None = None,
    mean_share: float = 0.0,
) -> list[tuple[int, float]]:
    """(id, cosine similarity of its best passage) nearest first, `depth` documents.

    With a `mean_share`, that share of each similarity is its mean vector's instead (see blended).

    A document is as near as its nearest passage: on hand-written paraphrases and pasted claims
    this ranks the right document higher than the mean of its passages does (bench_relevance).
    The candidates are the depth (at least RERANKED_CANDIDATES) nearest by mean vector, through
    the documents' HNSW index; their passages are then compared exactly. That scored as well as
    searching every passage through an index of its own (paraphrase MRR 0.909 both, held out),
    which at 100,000 documents was 781 MB beside the documents' 195 MB.
    """
    candidates = nearest_documents(vector, filters, depth=max(depth, RERANKED_CANDIDATES), exclude=exclude)
    return blended(by_best_passage(vector, candidates), candidates, mean_share)[:depth]


def by_best_passage(
    vector: Sequence[float] | np.ndarray, candidates: Sequence[tuple[int, float]]
) -> list[tuple[int, float]]:
    """The candidates (id, similarity) ranked by the cosine similarity of their nearest passage.

    A document stored without passages keeps the similarity it came with.
    """
    best = dict(candidates)
    passages = PatentPassage.objects.filter(patent_id__in=list(best))
    for patent_id, distance in (
        passages.values("patent_id")
        .annotate(distance=Min(CosineDistance("embedding", vector)))
        .values_list("patent_id", "distance")
    ):
        best[patent_id] = 1.0 - float(distance)
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))


def nearest_documents(
    vector: Sequence[float] | np.ndarray, filters: Filters, *, depth: int, exclude: int | None = None
) -> list[tuple[int, float]]:
    """(id, cosine similarity of its mean vector) nearest first: a whole document against whole documents.

    The novelty check compares a new document with the stored ones this way: its thresholds are
    calibrated on the similarity of whole documents, not of their best passages.
    """
    patents = filters.apply(Patent.objects.filter(embedding__isnull=False))
    if exclude is not None:
        patents = patents.exclude(pk=exclude)
    with scoped_settings() as cursor:
        # Few documents pass the filters: compute every distance, skipping the graph.
        exact = bool(filters) and patents.values("id")[: EXACT_SEARCH_ROWS + 1].count() <= EXACT_SEARCH_ROWS
        if exact:
            local = {"enable_indexscan": "off", "enable_bitmapscan": "on"}
        else:
            local = {
                "hnsw.ef_search": str(max(HNSW_EF_SEARCH, depth)),
                "hnsw.iterative_scan": "relaxed_order",
                "hnsw.max_scan_tuples": str(HNSW_MAX_SCAN_TUPLES),
            }
        # One round trip for all of them (set_config(..., true) is SET LOCAL).
        cursor.execute(
            "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(local)),
            [value for item in local.items() for value in item],
        )
        rows = patents.semantic(vector, exact=exact).values_list("id", "distance")[:depth]
        ranked = [(patent_id, 1.0 - float(value)) for patent_id, value in rows]
    # The graph's order is by half-precision distance, and relaxed_order may return near-ties slightly out of order.
    return sorted(ranked, key=lambda item: (-item[1], item[0]))


# --- Pages ------------------------------------------------------------------


def _page(
    mode: Mode,
    ranked: Sequence[tuple[int, float]],
    *,
    highlight: Highlight,
    offset: int,
    limit: int,
    sort: Sort,
    total: int | None = None,
    total_is_exact: bool = True,
) -> Results:
    """One page of a ranking, with snippets; the total is the ranking's length unless it is known to be more."""
    total = len(ranked) if total is None else total
    if sort == "date" and mode != "fulltext":
        ranked = _newest_first(ranked)
    window = list(ranked[offset : offset + limit])
    patents = _with_snippets([patent_id for patent_id, _ in window], highlight)
    hits = [
        Hit(patents[patent_id], score, patents[patent_id].snippet, getattr(patents[patent_id], "title_html", ""))
        for patent_id, score in window
    ]
    return Results(mode, hits, total, total_is_exact, offset, limit)


def _ranked_total(ranked: Sequence[tuple[int, float]], depth: int, filters: Filters) -> tuple[int, bool]:
    """Every document is in a semantic ranking: the total is the filtered collection's size, estimated."""
    if len(ranked) < depth:
        return len(ranked), True
    estimate = _estimated_rows(filters.apply(Patent.objects.filter(embedding__isnull=False)))
    return max(len(ranked), min(estimate, MAX_RESULTS)), False


def _newest_first(ranked: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    dates = dict(Patent.objects.filter(pk__in=[pk for pk, _ in ranked]).values_list("id", "publication_date"))
    return sorted(ranked, key=lambda item: (dates[item[0]], item[0]), reverse=True)


def _marks(compiled: query_language.CompiledQuery) -> Highlight:
    """What marks a page's matches: ts_headline's tsquery, or, where every occurrence of a word is not
    a match (fields, phrases, proximity), the query itself (search/highlighting.py)."""
    return compiled.tree if compiled.uses_positions and compiled.tree is not None else compiled.tsquery


def _with_snippets(ids: list[int], tsquery: Highlight) -> dict[int, Patent]:
    """The page's documents, each with a snippet that shows why it matched."""
    if not isinstance(tsquery, str):
        return _with_faithful_snippets(ids, tsquery)
    patents = Patent.objects.filter(pk__in=ids).only(*LIST_FIELDS, "abstract")
    if tsquery:
        patents = patents.annotate(
            # The claims are read and parsed only when the title and abstract don't match.
            headline=RawSQL(
                "ts_headline(%s::regconfig, CASE WHEN title_abstract_vector @@ to_tsquery(%s::regconfig, %s)"
                " THEN abstract ELSE abstract || ' ' || search_claims_text(claims) END,"
                " to_tsquery(%s::regconfig, %s), %s)",
                [SEARCH_CONFIG, SEARCH_CONFIG, tsquery, SEARCH_CONFIG, tsquery, _HEADLINE_OPTIONS],
            )
        )
    found = {patent.pk: patent for patent in patents}
    for patent in found.values():
        headline = getattr(patent, "headline", "")
        patent.snippet = _snippet_html(headline) if _START in headline else _lead(patent.abstract)
    return found


def _with_faithful_snippets(ids: list[int], tree: query_language.Node) -> dict[int, Patent]:
    found = {patent.pk: patent for patent in Patent.objects.filter(pk__in=ids).only(*LIST_FIELDS, "abstract", "claims")}
    for patent_id, (title, snippet) in highlighting.mark(list(found.values()), tree).items():
        patent = found[patent_id]
        patent.snippet = snippet or _lead(patent.abstract)
        patent.title_html = title if "<mark>" in title else ""
    return found


_HEADLINE_OPTIONS = (
    f'StartSel={_START}, StopSel={_STOP}, MaxWords=28, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "'
)


def _snippet_html(headline: str) -> str:
    text = html.escape(" ".join(headline.split()))
    return text.replace(_START, "<mark>").replace(_STOP, "</mark>")


def _lead(abstract: str, words: int = 40) -> str:
    parts = abstract.split()
    return html.escape(" ".join(parts[:words]) + (" …" if len(parts) > words else ""))


def _plain_tsquery(text: str) -> str:
    """Any of the text's words, for marking them in semantic results' snippets."""
    words = dict.fromkeys(word.lower() for word in re.findall(r"[^\W_]{3,}", text[:2_000]))
    return " | ".join(f"'{word}'" for word in list(words)[:64])


def _check_page(offset: int, limit: int, largest: int = 100) -> None:
    if not 1 <= limit <= largest:
        raise SearchError(f"limit must be between 1 and {largest}")
    if not 0 <= offset <= MAX_RESULTS - limit:
        raise SearchError(f"offset must be between 0 and {MAX_RESULTS - limit} (results stop at {MAX_RESULTS:,})")


def _check_pasted_text(text: str) -> str:
    """A claim or draft pasted for semantic search: far longer than a query may be (MAX_TEXT_LENGTH)."""
    if not text.strip():
        raise SearchError("The query is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise SearchError(f"The text is {len(text):,} characters long; the limit is {MAX_TEXT_LENGTH:,}")
    return text
