"""L-numbers: earlier searches of a session combined by number, expanded to their queries and run as one."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from allpatents.fuzzing import examiner_queries
from search.models import Patent
from search.query import QuerySyntaxError, compile_query, expand_sets, parse, set_references

SETS = {1: "valve AND spring", 2: "catheter$ OR stent", 3: '"heat sink"', 4: "ti:pump", 5: "lens ADJ3 mount"}


@pytest.mark.parametrize(
    ("query", "expanded"),
    [
        ("L3 AND L5", '("heat sink") AND (lens ADJ3 mount)'),
        ("L2 NOT catheter", "(catheter$ OR stent) NOT catheter"),
        ("(L1 OR L4) AND valve.ti.", "((valve AND spring) OR (ti:pump)) AND valve.ti."),
        ("L1", "(valve AND spring)"),
        ("L1 L2", "(valve AND spring) (catheter$ OR stent)"),
        ("L5 NEAR2 L3", '(lens ADJ3 mount) NEAR2 ("heat sink")'),
        ("clm:(L1) XOR L2", "clm:((valve AND spring)) XOR (catheter$ OR stent)"),
        ("-L2 drill", "-(catheter$ OR stent) drill"),
    ],
)
def test_each_l_number_form_expands_to_its_sets_query_in_parentheses(query: str, expanded: str) -> None:
    assert expand_sets(query, SETS) == expanded
    parse(expanded)  # and it parses (a QuerySyntaxError fails the test)


@pytest.mark.parametrize(
    "query",
    ['"L5" vertebra', "l5 vertebra", "L5x", "ABL5", "L0 AND pump", "L12345", "pump-L5"],
)
def test_quoted_lower_case_and_other_words_are_not_sets(query: str) -> None:
    assert set_references(query) == []
    assert expand_sets(query, {}) == query


def test_a_set_not_in_the_history_is_named_with_its_place() -> None:
    with pytest.raises(QuerySyntaxError) as refused:
        expand_sets("L1 AND L9", SETS)

    assert str(refused.value) == (
        'L9 is not a search in this session\'s history; write "L9" to search for the word (at character 8)'
    )


def test_a_sets_query_must_arrive_expanded() -> None:
    with pytest.raises(QuerySyntaxError, match="The query of L2 must be sent expanded"):
        expand_sets("L2", {2: "L1 AND pump"})
    with pytest.raises(QuerySyntaxError, match="The query of L2 must be sent expanded"):
        expand_sets("L2", {2: "   "})


@settings(max_examples=200, deadline=None)
@given(st.lists(examiner_queries, min_size=1, max_size=4), st.data())
def test_any_combination_of_valid_sets_compiles_as_their_parenthesised_queries_would(
    queries: list[str], data: st.DataObject
) -> None:
    """Expansion never changes the meaning of the sets: it is the hand-written parenthesised query."""
    sets = {number: query for number, query in enumerate(queries, start=1)}
    for query in queries:
        try:
            parse(query)
        except QuerySyntaxError:
            return  # only valid queries become sets
    operator = data.draw(st.sampled_from(["AND", "OR", "NOT", "XOR", "NEAR3"]))
    combined = f" {operator} ".join(f"L{number}" for number in sets)
    by_hand = f" {operator} ".join(f"({query})" for query in queries)
    try:
        expected = compile_query(parse(by_hand), lambda pattern: ["word"])
    except QuerySyntaxError as error:
        with pytest.raises(QuerySyntaxError, match=re.escape(str(error).split(" (at")[0])):
            compile_query(parse(expand_sets(combined, sets)), lambda pattern: ["word"])
        return
    assert compile_query(parse(expand_sets(combined, sets)), lambda pattern: ["word"]) == expected


@pytest.fixture
def corpus(db: None) -> None:
    from tests import factories

    factories.patent(title="Spring-loaded check valve", abstract="A valve closed by a spring.", origin="reference")
    factories.patent(title="Balloon catheter", abstract="A catheter with a stent and a valve.", origin="reference")
    factories.patent(title="Heat sink for a pump", abstract="A pump motor cooled by a heat sink.", origin="reference")


def titles(page: str) -> list[str]:
    import re as regex

    return regex.findall(r'class="result-title"[^>]*>([^<]+)<', page)


def test_a_combined_search_finds_what_the_hand_expanded_query_finds_and_records_both_forms(
    client: Client, corpus: None
) -> None:
    combined = client.get(
        "/search/", {"q": "(L1 OR L2) NOT L3", "mode": "fulltext", "L1": "valve", "L2": "catheter", "L3": "pump"}
    )
    by_hand = client.get("/search/", {"q": "((valve) OR (catheter)) NOT (pump)", "mode": "fulltext"})

    assert combined.status_code == 200
    assert titles(combined.content.decode()) == titles(by_hand.content.decode())
    assert sorted(titles(by_hand.content.decode())) == ["Balloon catheter", "Spring-loaded check valve"]
    record = combined.context["record"]
    assert (record["typed"], record["expanded"], record["hits"], record["exact"]) == (
        "(L1 OR L2) NOT L3",
        "((valve) OR (catheter)) NOT (pump)",
        2,
        True,
    )


def test_a_search_naming_a_set_the_browser_did_not_send_is_refused_with_its_number(
    client: Client, corpus: None
) -> None:
    response = client.get("/search/", {"q": "L1 AND L7", "L1": "valve"})

    assert response.status_code == 400
    assert "L7 is not a search in this session&#x27;s history" in response.content.decode()


def test_the_page_hands_its_search_to_the_browser_history_with_mode_filters_and_time(
    client: Client, corpus: None
) -> None:
    response = client.get("/search/", {"q": "valve", "mode": "fulltext", "before": "2030-01-01", "op": "OR"})

    record = response.context["record"]
    assert record["mode"] == "Keyword"
    assert record["filters"] == ["Published before: 2030-01-01", "Between bare words: OR"]
    assert record["time"].endswith("Z")
    assert '<script id="search-record" type="application/json">' in response.content.decode()


def test_a_search_for_the_word_l5_itself_needs_no_history(client: Client, db: None) -> None:
    assert Patent.objects.count() == 0
    assert client.get("/search/", {"q": '"L5" vertebra'}).status_code == 200
