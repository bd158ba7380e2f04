"""The examiners' query language: parsing, compilation to tsquery, and the messages for bad queries."""

import re

import pytest
from hypothesis import given, settings

from allpatents.fuzzing import any_text, examiner_queries
from search.query import (
    CompiledQuery,
    QuerySyntaxError,
    compile_query,
    parse,
    truncation_pattern,
    uses_examiner_syntax,
)

VOCABULARY = ["inflate", "inflated", "inflation", "inflatable", "woman", "women", "charge", "charger"]


def expand(pattern: str) -> list[str]:
    regex = re.compile(pattern.replace("[[:alnum:]]", "[a-z0-9]"))
    return sorted(word for word in VOCABULARY if regex.match(word))


def compiled(query: str, **options: str) -> CompiledQuery:
    return compile_query(parse(query, **options), expand)


@pytest.mark.parametrize(
    ("query", "tsquery"),
    [
        ("battery charger", "('battery' & 'charger')"),
        ("battery AND charger", "('battery' & 'charger')"),
        ("battery OR cell", "('battery' | 'cell')"),
        ("cup or mug", "('cup' | 'mug')"),
        ("cup or", "('cup' & 'or')"),  # a trailing lowercase "or" is a (stop) word, not an operator
        ("battery NOT lithium", "('battery' & !('lithium'))"),
        ("drill -hammer", "('drill' & !('hammer'))"),
        ("a XOR b", "(('a' & !('b')) | (!('a') & 'b'))"),
        ("a b OR c d", "(('a' & 'b') | ('c' & 'd'))"),
        ("a AND (b OR c)", "('a' & ('b' | 'c'))"),
        ('"light emitting diode"', "('light' <-> 'emitting' <-> 'diode')"),
        ("light-emitting", "('light' <-> 'emitting')"),
        ("lens ADJ mount", "'lens' <1> 'mount'"),
        ("lens ADJ2 mount", "('lens' <1> 'mount' | 'lens' <2> 'mount')"),
        ("lens NEAR2 mount", "('lens' <1> 'mount' | 'lens' <2> 'mount' | 'mount' <1> 'lens' | 'mount' <2> 'lens')"),
        ("lens NOT ADJ mount", "('lens' & !('lens' <1> 'mount'))"),
        ("(lens OR optic) ADJ mount", "('lens' | 'optic') <1> 'mount'"),
        ("ti:battery", "'battery':A"),
        ("(battery OR cell).ti,ab.", "('battery':AB | 'cell':AB)"),
        ('clm:"lens mount" ab:pin', "(('lens':C <-> 'mount':C) & 'pin':B)"),
        ("inflat$", "('inflatable' | 'inflate' | 'inflated' | 'inflation')"),
        ("inflat$1", "'inflate'"),
        ("inflat$2", "('inflate' | 'inflated')"),
        ("wom?n", "('woman' | 'women')"),
        ("charg$ ADJ battery", "('charge' | 'charger') <1> 'battery'"),
    ],
)
def test_queries_compile_to_tsquery(query: str, tsquery: str) -> None:
    result = compiled(query)
    assert (result.tsquery, result.condition) == (tsquery, "")


@pytest.mark.parametrize(
    ("query", "words", "uses_positions"),
    [
        ("battery NOT lithium", "('battery' & !('lithium'))", False),
        ("inflat$2 OR cell", "(('inflate' | 'inflated') | 'cell')", False),
        ('"light emitting diode"', "('light' & 'emitting' & 'diode')", True),
        ("lens NEAR2 mount", "('lens' & 'mount')", True),
        ("ti:battery", "'battery'", True),
        ('clm:"lens mount" OR pin', "(('lens' & 'mount') | 'pin')", True),
        # Not being in a phrase rules nothing out by the words alone; not having a word does.
        ('lens NOT "lens cap"', "'lens'", True),
        ("lens NOT ADJ mount", "'lens'", True),
        ("lens WITH mount", "('lens' & 'mount')", False),  # its sentences are the condition's job
        ("a XOR b ADJ c", "('a' | ('b' & 'c'))", True),
    ],
)
def test_the_index_finds_candidates_by_words_alone(query: str, words: str, uses_positions: bool) -> None:
    result = compiled(query)
    assert (result.words, result.uses_positions) == (words, uses_positions)


def test_default_operator_can_be_or_as_in_patent_public_search() -> None:
    assert compiled("a b AND c", default_operator="OR").tsquery == "('a' | ('b' & 'c'))"
    # `-word` still excludes.
    assert compiled("a b -c", default_operator="OR").tsquery == "('a' | ('b' & !('c')))"


def test_with_and_same_find_candidates_by_and_and_recheck_on_sentence_and_paragraph_vectors() -> None:
    with_ = compiled("lens WITH mount")
    assert with_.tsquery == "('lens' & 'mount')"
    assert with_.condition == "(sentence_vector @@ to_tsquery('english', %s))"
    assert with_.parameters == ["('lens' <0> 'mount' | 'mount' <0> 'lens')"]

    same2 = compiled("lens SAME2 mount")
    assert same2.condition == "(paragraph_vector @@ to_tsquery('english', %s))"
    assert same2.parameters == ["('lens' <0> 'mount' | 'lens' <1> 'mount' | 'mount' <0> 'lens' | 'mount' <1> 'lens')"]

    not_with = compiled("lens NOT WITH mount")
    assert not_with.tsquery == "'lens'"
    assert not_with.condition == (
        "((search_vector @@ to_tsquery('english', %s)) AND NOT (sentence_vector @@ to_tsquery('english', %s)))"
    )

    # A phrase inside WITH is "all its words in one sentence" on the sentence vector.
    assert compiled('"lens cap" WITH mount').parameters == [
        "(('lens' <0> 'cap') <0> 'mount' | 'mount' <0> ('lens' <0> 'cap'))"
    ]


def test_a_truncation_that_matches_no_word_makes_its_branch_false() -> None:
    assert compiled("zebra$ OR battery").tsquery == "'battery'"
    assert compiled("zebra$ AND battery").matches_nothing


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "The query is empty"),
        ("(battery OR cell", "Unbalanced parentheses: this '(' is never closed (at character 1)"),
        ("battery)", "Unbalanced parentheses: this ')' has no matching '(' (at character 8)"),
        ("battery AND", "AND needs a term after it (at character 9)"),
        ("OR battery", "OR needs a term before it (at character 1)"),
        ("battery ADJ", "ADJ needs a term after it (at character 9)"),
        ("lens ADJ0 mount", "ADJ0: the distance must be between 1 and 99 (at character 6)"),
        ("lens SAME26 mount", "SAME26: the distance must be between 1 and 25 (at character 6)"),
        ('"light emitting', 'Unclosed quotation mark: a phrase needs a closing " (at character 1)'),
        ("()", "Empty parentheses (at character 1)"),
        ("NOT battery", "A query can't only exclude: add a word to look for"),
        ("-battery", "A query can't only exclude: add a word to look for"),
        ("battery\x00", "The query contains a control character (U+0000) (at character 8)"),
        ("i$", "i$: truncation needs at least 2 letters before it (at character 1)"),
        ("in$fl", "in$fl: $ truncates the end of a word only (at character 1)"),
        (
            "(lens AND cap) NEAR mount",
            "NEAR: proximity operators join words, phrases, OR-groups or ADJ/NEAR groups, "
            "not AND, NOT or other WITH/SAME groups (at character 16)",
        ),
    ],
)
def test_malformed_queries_name_the_problem(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as error:
        compiled(query)
    assert str(error.value) == message


def test_a_pasted_document_is_refused_with_a_pointer_to_search_by_text() -> None:
    with pytest.raises(QuerySyntaxError, match=r"50,000 characters long; the limit is 4,000. .*search by text"):
        parse("battery " * 6250)


def test_truncation_patterns() -> None:
    assert truncation_pattern("inflat$") == "^inflat[[:alnum:]]*$"
    assert truncation_pattern("inflat$2") == "^inflat[[:alnum:]]{0,2}$"
    assert truncation_pattern("wom?n") == "^wom[[:alnum:]]n$"


@pytest.mark.parametrize(
    ("query", "examiner"),
    [
        ("cordless drill with a clutch", False),
        ('"cordless drill" -hammer', False),
        ("cup or mug", False),
        ("what is a good battery?", False),
        ("drill AND clutch", True),
        ("(drill)", True),
        ("inflat$", True),
        ("wom?n", True),
        ("ti:drill", True),
        ("drill.ti.", True),
        ("drill ADJ2 chuck", True),
    ],
)
def test_examiner_syntax_is_told_from_plain_language(query: str, examiner: bool) -> None:
    assert uses_examiner_syntax(query) is examiner


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("(" * 600 + "gear" + ")" * 600, "nests more than 32 levels"),
        ("gear" + " XOR gear" * 100, "nests more than 32 levels"),
        ("gear" + " ADJ gear" * 100, "nests more than 32 levels"),
        ("gear" + " NOT wheel" * 100, "nests more than 32 levels"),
        ("NOT " * 600 + "gear", "nests more than 32 levels"),
        (" ".join(f"w{n}" for n in range(300)), "300 terms; the limit is 256"),
    ],
)
def test_queries_too_deep_or_too_long_to_cost_predictably_are_refused(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message):
        compiled(query)


def compiles_or_explains(query: str) -> bool:
    """True when the query compiles (to a tsquery, or to nothing when no word matches a truncation) or is
    refused with a message; any other error escapes."""
    try:
        return isinstance(compiled(query), CompiledQuery)
    except QuerySyntaxError as error:
        return bool(str(error))


@settings(max_examples=400, deadline=None)
@given(examiner_queries)
def test_any_query_of_the_grammar_compiles_or_is_refused_with_a_message(query: str) -> None:
    assert compiles_or_explains(query)


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_any_text_at_all_parses_or_is_refused_with_a_message(query: str) -> None:
    assert compiles_or_explains(query)
