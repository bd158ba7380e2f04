"""The costliest searches a stranger can send within the limits, timed on the benchmark database.

Each is built to push one bound as far as it goes: the most terms, the deepest
nesting, the widest truncation, the longest proximity windows over the
commonest words, the deepest page, the largest export, the longest pasted
text. Each either answers or is refused with a message (a 4xx at the API);
`bench_search` reports how long each took, so the bounds are known to hold
at the scale they were set for.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass

from search import query as query_language
from search import searching
from search.searching import Filters

# Words in most patents' claims: each matches a large share of any patent corpus.
COMMON = [
    "first", "second", "third", "device", "system", "method", "wherein", "comprising", "portion", "member",
    "surface", "unit", "end", "side", "body", "configured", "plurality", "least", "one", "each", "having",
    "position", "signal", "control", "data", "element", "layer", "support",
]  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    name: str
    run: Callable[[], object]


def attempts() -> list[Attempt]:
    words = (COMMON * (query_language.MAX_TERMS // len(COMMON) + 1))[: query_language.MAX_TERMS]
    nested = "device"
    for word in COMMON[: query_language.MAX_NESTING - 1]:
        nested = f"({nested} AND {word})"
    long_plain = " ".join(COMMON * 200)[: query_language.MAX_QUERY_LENGTH]
    decade = Filters(after=datetime.date(2009, 12, 31), before=datetime.date(2020, 1, 1))

    def fulltext(text: str, **options) -> Callable[[], object]:
        return lambda: searching.search(text, mode="fulltext", **options)

    return [
        Attempt(f"{len(words)} common words OR-ed (the term limit)", fulltext(" OR ".join(words))),
        Attempt(f"{len(words)} common words AND-ed", fulltext(" AND ".join(words))),
        Attempt(f"{query_language.MAX_NESTING} levels of parentheses", fulltext(nested)),
        Attempt("truncation of a short stem (con$)", fulltext("con$")),
        Attempt("truncation of a short stem (pro$ AND sub$)", fulltext("pro$ AND sub$")),
        Attempt("the commonest pair, NEAR99", fulltext(f"first NEAR{query_language.MAX_WORD_DISTANCE} second")),
        Attempt("the commonest pair, ADJ99", fulltext(f"wherein ADJ{query_language.MAX_WORD_DISTANCE} comprising")),
        Attempt("alternatives within five words", fulltext("(first OR second OR third) NEAR5 (device OR system)")),
        Attempt("two common words in one paragraph", fulltext("first SAME second")),
        Attempt("a phrase of common words", fulltext('"the first portion of the second"')),
        Attempt("a common word without another", fulltext("device NOT wherein")),
        Attempt("a common word, newest first, last page", fulltext("device", sort="newest", offset=980, limit=20)),
        Attempt("a common word, oldest first, in a decade", fulltext("device", sort="oldest", filters=decade)),
        Attempt(
            "an export of 1,000 results", fulltext("system AND method", limit=searching.MAX_RESULTS, snippets=False)
        ),
        Attempt(
            f"hybrid, {len(long_plain):,} characters of common words",
            lambda: searching.search(long_plain, mode="hybrid"),
        ),
        Attempt("hybrid, common words, last page", lambda: searching.search("first device", mode="hybrid", offset=80)),
        Attempt(
            "semantic, a decade's filter",
            lambda: searching.search("a device with a sensor", mode="semantic", filters=decade),
        ),
        Attempt(
            f"search by text, {searching.MAX_TEXT_LENGTH:,} characters",
            lambda: searching.search_by_text(" ".join(COMMON * 10_000)[: searching.MAX_TEXT_LENGTH]),
        ),
    ]


def measure() -> list[dict[str, object]]:
    """Each attempt once (after one untimed run that warms the cache), slowest first."""
    timed = []
    for attempt in attempts():
        _run(attempt)
        began = time.perf_counter()
        outcome = _run(attempt)
        timed.append((round((time.perf_counter() - began) * 1000, 1), attempt.name, outcome))
    return [{"name": name, "ms": ms, "outcome": outcome} for ms, name, outcome in sorted(timed, reverse=True)]


def _run(attempt: Attempt) -> str:
    try:
        result = attempt.run()
    except searching.SearchError as error:
        return f"refused: {str(error)[:160]}"
    total = getattr(result, "total", None)
    return f"{total:,} results" if isinstance(total, int) else "answered"
