"""Search on tiny hand-made corpora, through the real database: every operator, filters, pages, snippets."""

import datetime
import math
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from search import searching
from search.importing import import_patents
from search.models import Origin, Patent
from search.searching import Filters, SearchError, convex_fusion, search
from tests import factories
from tests.conftest import SAMPLE

pytestmark = pytest.mark.django_db

CORPUS = [
    (
        "US1",
        "Camera lens mount",
        "A lens is held in a bayonet mount. A pin locks the mount.",
        ["A camera comprising a lens and a bayonet mount.", "The camera of claim 1, wherein a pin locks the mount."],
        "2001-01-01",
        ["G03B17/14"],
    ),
    (
        "US2",
        "Telescope mount",
        "The mount carries a heavy telescope. An objective lens sits in the tube.",
        ["A telescope comprising a tube and a mount."],
        "2005-06-01",
        ["G02B23/16"],
    ),
    (
        "US3",
        "Inflatable boat",
        "An inflatable hull is inflated by a foot pump.",
        ["A boat comprising an inflation valve."],
        "2010-03-01",
        [],
    ),
    (
        "US4",
        "Garment for women",
        "A jacket for a woman with a hood & a <zip>.",
        ["A jacket comprising a hood."],
        "2015-01-01",
        [],
    ),
    (
        "US5",
        "Battery charger",
        "A charger recharges a lithium battery pack. The light-emitting diode shows the charge.",
        ["A charger comprising a diode that is light emitting."],
        "2020-01-01",
        [],
    ),
]


@pytest.fixture
def corpus(db: None) -> dict[str, Patent]:
    patents = [
        factories.patent(
            title=title,
            abstract=abstract,
            claims=claims,
            origin=Origin.REFERENCE,
            save=False,
            source_id=source_id,
            source_date=datetime.date.fromisoformat(date),
            cpc=cpc,
        )
        for source_id, title, abstract, claims, date, cpc in CORPUS
    ]
    Patent.objects.bulk_create(patents)
    return {patent.source_id: patent for patent in Patent.objects.all()}


def found(query: str, **options: object) -> list[str]:
    results = search(query, mode="fulltext", **options)
    return [hit.patent.source_id for hit in results.hits]


OPERATOR_CASES = [
    # Boolean operators; the title (weight A) outranks the abstract.
    ("lens", ["US1", "US2"]),
    ("lens AND telescope", ["US2"]),
    ("lens mount", ["US1", "US2"]),
    ("boat OR jacket", ["US3", "US4"]),
    ("mount NOT telescope", ["US1"]),
    ("mount -telescope", ["US1"]),
    ("lens XOR telescope", ["US1"]),
    ("(boat OR telescope) AND NOT tube", ["US3"]),
    # Phrases; a hyphenated word is a phrase and finds the unhyphenated form too.
    ('"bayonet mount"', ["US1"]),
    ('"mount bayonet"', []),
    ("light-emitting", ["US5"]),
    ('"diode that is light emitting"', ["US5"]),
    # Truncation.
    ("inflat$", ["US3"]),
    ("inflat$2", ["US3"]),
    ("inflat$1", []),
    ("wom?n", ["US4"]),
    ("charg$ ADJ3 lithium", ["US5"]),
    ("charg$ ADJ2 lithium", []),
    # Word proximity: ADJ is ordered, NEAR is not.
    ("lens ADJ mount", ["US1"]),
    ("mount ADJ lens", []),
    ("mount NEAR lens", ["US1"]),
    ("pin ADJ2 locks", ["US1"]),
    ("pin ADJ2 mount", []),
    ("pin ADJ3 mount", ["US1"]),
    ("lens NOT ADJ mount", ["US2"]),
    # Sentences and paragraphs.
    ("lens WITH mount", ["US1"]),
    ("telescope WITH lens", []),
    ("telescope WITH2 lens", ["US2"]),
    ("telescope SAME lens", ["US2"]),
    ("tube SAME lens", ["US2"]),
    ("lens NOT WITH mount", ["US2"]),
    ("mount NOT SAME pin", ["US2"]),
    ('"bayonet mount" WITH camera', ["US1"]),
    # Fields.
    ("ti:lens", ["US1"]),
    ("lens.ab.", ["US1", "US2"]),
    ("clm:lens", ["US1"]),
    ("(telescope OR camera).ti.", ["US2", "US1"]),  # equal matches: the shorter document first
    ("ti:mount AND clm:tube", ["US2"]),
]


@pytest.mark.parametrize(("query", "expected"), OPERATOR_CASES)
def test_operators_find_exactly_the_right_documents_in_rank_order(
    corpus: dict[str, Patent], query: str, expected: list[str]
) -> None:
    assert found(query) == expected


@pytest.fixture
def many_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner expects more matches than are ranked, as for a common word in a big collection."""
    monkeypatch.setattr(searching, "_estimated_rows", lambda patents: 10 * searching.RANK_CANDIDATES)


@pytest.mark.parametrize(("query", "expected"), OPERATOR_CASES)
def test_ranking_in_tiers_finds_the_same_documents(
    corpus: dict[str, Patent], many_expected: None, query: str, expected: list[str]
) -> None:
    results = search(query, mode="fulltext")
    assert sorted(hit.patent.source_id for hit in results.hits) == sorted(expected)
    assert (results.total, results.total_is_exact) == (len(expected), True)


def test_when_many_match_title_and_abstract_matches_rank_first(corpus: dict[str, Patent], many_expected: None) -> None:
    # "comprising" is in every claim; only the two mounts have a word in their title or abstract, and
    # they rank on those alone: US1's abstract says "mount" twice. (On whole texts US2's claim puts it first.)
    assert found("mount OR comprising") == ["US1", "US2", "US4", "US3", "US5"]


def test_filters_narrow_by_date_origin_and_classification(corpus: dict[str, Patent]) -> None:
    assert found("mount", filters=Filters(before=datetime.date(2005, 6, 1))) == ["US1"]
    assert found("mount", filters=Filters(after=datetime.date(2001, 1, 1))) == ["US2"]
    assert found("mount", filters=Filters(origin="generated")) == []
    assert found("mount", filters=Filters(classification="G03B")) == ["US1"]
    assert found("mount", filters=Filters(classification="g02b 23")) == ["US2"]
    assert found("mount", filters=Filters(before=datetime.date(2001, 1, 1), after=datetime.date(2002, 1, 1))) == []


def test_sort_by_date_is_newest_first(corpus: dict[str, Patent]) -> None:
    assert found("comprising", sort="date") == ["US5", "US4", "US3", "US2", "US1"]


def test_pages_are_stable_and_totals_exact(corpus: dict[str, Patent]) -> None:
    everything = search("comprising", mode="fulltext", limit=10)
    pages = [search("comprising", mode="fulltext", limit=2, offset=offset) for offset in (0, 2, 4)]

    assert [hit.patent.source_id for page in pages for hit in page.hits] == [
        hit.patent.source_id for hit in everything.hits
    ]
    assert (everything.total, everything.total_is_exact) == (5, True)
    assert [page.has_next for page in pages] == [True, True, False]


def test_too_many_matches_rank_a_bounded_set_and_say_so(
    corpus: dict[str, Patent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(searching, "RANK_CANDIDATES", 3)

    results = search("comprising", mode="fulltext")

    assert len(results.hits) == 3
    assert results.total >= 4
    assert not results.total_is_exact
    assert "More than 3 documents match" in results.notes[0]


def test_snippets_mark_the_matched_words_and_escape_the_text(corpus: dict[str, Patent]) -> None:
    # The abstract matches, so the snippet comes from it alone.
    [hit] = search("jacket AND hood", mode="fulltext").hits
    assert hit.snippet == "<mark>jacket</mark> for a woman with a <mark>hood</mark>"

    # Only a claim has "valve": the snippet reaches into the claims.
    [hit] = search("valve", mode="fulltext").hits
    assert hit.snippet == (
        "inflatable hull is inflated by a foot pump. A boat comprising an inflation <mark>valve</mark>"
    )

    # Only the title has "garment": the snippet is the abstract's start, escaped.
    [hit] = search("garment", mode="fulltext").hits
    assert hit.snippet == "A jacket for a woman with a hood &amp; a &lt;zip&gt;."


def test_bad_requests_are_search_errors_with_a_message(corpus: dict[str, Patent]) -> None:
    with pytest.raises(SearchError, match=r"Unbalanced parentheses"):
        search("(lens", mode="fulltext")
    with pytest.raises(SearchError, match="limit must be between 1 and 100"):
        search("lens", limit=0)
    with pytest.raises(SearchError, match="offset must be between 0 and 980"):
        search("lens", offset=5000)


def test_plain_words_default_to_hybrid_and_examiner_syntax_to_fulltext(imported: dict[str, Patent]) -> None:
    assert search("hand truck with a footplate").mode == "hybrid"
    assert search("truck AND footplate").mode == "fulltext"


def test_semantic_search_and_more_like_this(imported: dict[str, Patent]) -> None:
    truck = imported["US11147202B2"]

    by_text = searching.search_by_text(truck.abstract)
    similar = searching.similar(truck, limit=3)

    assert by_text.hits[0].patent == truck
    assert truck not in [hit.patent for hit in similar]
    assert [hit.score for hit in similar] == sorted((hit.score for hit in similar), reverse=True)


def test_filtered_semantic_search_returns_every_document_that_passes(imported: dict[str, Patent]) -> None:
    # Four of the five sample patents are dated 2021; the filter leaves exactly those.
    results = search("a cart for moving loads", mode="semantic", filters=Filters(after=datetime.date(2021, 1, 1)))
    assert sorted(hit.patent.source_id for hit in results.hits) == sorted(
        patent.source_id for patent in imported.values() if patent.publication_date > datetime.date(2021, 1, 1)
    )


@pytest.fixture
def big_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Word statistics as of a big collection, where a plain query's rarest word is in thousands of documents."""
    frequencies = searching.LexemeFrequencies({"mount": 0.5, "valv": 0.5}, 0.001, 10_000, 20.0, time.monotonic())
    monkeypatch.setattr(searching, "lexeme_frequencies", lambda: frequencies)


def test_plain_words_in_many_documents_rank_titles_and_abstracts_first(
    corpus: dict[str, Patent], big_collection: None
) -> None:
    with CaptureQueriesContext(connection) as captured:
        ranked = searching.keyword_ranking("mount", Filters())
    assert [patent_id for patent_id, _ in ranked] == [corpus["US1"].pk, corpus["US2"].pk]
    assert any("title_abstract_vector @@" in query["sql"] for query in captured)

    # No title or abstract has "valve": the whole texts are searched too.
    assert [patent_id for patent_id, _ in searching.keyword_ranking("valve", Filters())] == [corpus["US3"].pk]


def test_hybrid_fuses_both_rankings(imported: dict[str, Patent]) -> None:
    results = search("hand truck footplate", mode="hybrid")
    assert results.hits[0].patent.source_id == "US11147202B2"


def test_convex_fusion_scales_each_ranking_and_weighs_meaning_less() -> None:
    text = [(1, 9.0), (2, 8.0), (4, 5.0)]  # scaled: 1, 0.75, 0
    semantic = [(2, 0.9), (3, 0.8), (1, 0.5)]  # scaled: 1, 0.75, 0
    fused = convex_fusion(text, semantic, semantic_weight=0.25)
    assert fused == [(2, pytest.approx(0.8125)), (1, pytest.approx(0.75)), (3, pytest.approx(0.1875)), (4, 0.0)]
    # A lexical lead stays when meaning weighs little; a single result scales to 1.
    assert [patent_id for patent_id, _ in convex_fusion(text, semantic, semantic_weight=0.1)] == [1, 2, 3, 4]
    assert convex_fusion([(7, 3.0)], [], semantic_weight=0.15) == [(7, pytest.approx(0.85))]


def test_coverage_is_the_idf_weighted_share_of_the_query_words_a_document_has(
    corpus: dict[str, Patent], big_collection: None
) -> None:
    rare = math.log(1 + (10_000 - 5 + 0.5) / (5 + 0.5))  # a word not in the statistics: rarer than their floor
    common = math.log(2)  # "mount", in half the documents
    camera = corpus["US1"].pk

    def coverage(query: str) -> float:
        return searching.lexical_coverage(searching.query_words(query), camera)

    assert coverage("camera lens mount") == pytest.approx(1.0)
    assert coverage("lens mount boat") == pytest.approx((rare + common) / (2 * rare + common))
    assert coverage("sailing dinghy") == 0.0


def test_a_query_leans_on_meaning_as_its_words_are_missing_from_the_best_keyword_match() -> None:
    assert [searching.other_words_share(c) for c in (1.0, 0.6, 0.5, 0.4, 0.2, 0.0)] == pytest.approx(
        [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    )
    assert searching.hybrid_weights(0.0) == (0.5, 0.0)
    assert searching.hybrid_weights(0.5) == pytest.approx((0.6, 0.25))
    assert searching.hybrid_weights(1.0) == pytest.approx((0.7, 0.5))


def test_blending_mixes_best_passage_and_mean_vector_similarities() -> None:
    by_passage = [(1, 0.9), (2, 0.8), (3, 0.7)]
    by_mean = [(2, 0.9), (1, 0.5)]  # 3 has no mean similarity here: it keeps its passage's
    assert searching.blended(by_passage, by_mean, 0.5) == [
        (2, pytest.approx(0.85)),
        (1, pytest.approx(0.7)),
        (3, pytest.approx(0.7)),
    ]
    assert searching.blended(by_passage, by_mean, 0.0) == by_passage


def test_hybrid_weighs_meaning_more_for_a_query_in_other_words(
    imported: dict[str, Patent], monkeypatch: pytest.MonkeyPatch
) -> None:
    weights: list[float] = []
    fuse = searching.convex_fusion

    def recording(text: list[tuple[int, float]], semantic: list[tuple[int, float]], weight: float) -> object:
        weights.append(weight)
        return fuse(text, semantic, weight)

    monkeypatch.setattr(searching, "convex_fusion", recording)
    truck = imported["US11147202B2"]
    own_words = " ".join(truck.abstract.split()[:12])
    search(own_words, mode="hybrid")
    search("a little wagon you push to haul boxes around", mode="hybrid")
    search("cart AND wheel", mode="hybrid")  # examiners' syntax: the words are the ones asked for
    assert weights == [0.5, pytest.approx(0.7), 0.5]


def test_a_semantic_ranking_inside_a_transaction_leaves_its_planner_settings_behind(
    imported: dict[str, Patent],
) -> None:
    from django.db import transaction

    truck = imported["US11147202B2"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = 40")
        ranked = searching.semantic_ranking(truck.embedding, Filters(), depth=1)
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
        after = cursor.fetchone()

    assert [patent_id for patent_id, _ in ranked] == [truck.pk]
    assert after == ("40", "off")


def test_a_semantic_ranking_outside_a_transaction_takes_no_savepoint_and_leaves_no_setting_behind(
    transactional_db: None,
) -> None:
    import_patents(SAMPLE)
    truck = Patent.objects.get(source_id="US11147202B2")

    with CaptureQueriesContext(connection) as queries:
        ranked = searching.semantic_ranking(truck.embedding, Filters(), depth=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'), "
            "current_setting('statement_timeout')"
        )
        after = cursor.fetchone()

    assert [patent_id for patent_id, _ in ranked] == [truck.pk]
    assert [query["sql"] for query in queries if "SAVEPOINT" in query["sql"]] == []
    assert after == ("40", "off", "0")


def test_outside_a_transaction_a_statement_past_the_timeout_is_stopped_and_the_connection_stays_usable(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(searching, "STATEMENT_TIMEOUT_MS", 50)

    with pytest.raises(SearchError, match=r"ran longer than 0\.05 s"), searching.scoped_settings() as cursor:
        cursor.execute("SELECT pg_sleep(1)")

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)


def test_a_search_statement_past_the_timeout_is_stopped_with_advice_and_the_connection_stays_usable(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(searching, "STATEMENT_TIMEOUT_MS", 50)

    with (
        pytest.raises(SearchError, match=r"ran longer than 0\.05 s and was stopped\. Narrow it"),
        searching.scoped_settings() as cursor,
    ):
        cursor.execute("SELECT pg_sleep(1)")

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)  # the limit ended with the search
