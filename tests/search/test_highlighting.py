"""Faithful marks: only the words where the query matched, in its field and within its distance."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from search.highlighting import WORD, Document, lexemes_of, mark
from search.models import Patent
from search.query import QuerySyntaxError, parse
from tests import factories

pytestmark = pytest.mark.django_db

CAMERA = Patent(
    pk=1,
    title="Lens mount for a camera",
    abstract="The lens sits far away from the camera mount. Here a lens mount holds it. A valve closes.",
    claims=[
        {"number": 1, "text": "A camera comprising a valve and a spring. The valve is closed by the spring."},
        {"number": 2, "text": "The camera of claim 1, wherein the lens is glass."},
    ],
)


def marks(query: str, patent: Patent = CAMERA) -> tuple[list[str], str]:
    """The marked words of the title, and the snippet with its marks in [brackets]."""
    title, snippet = mark([patent], parse(query))[patent.pk]
    return re.findall(r"<mark>(.*?)</mark>", title), re.sub(r"<mark>(.*?)</mark>", r"[\1]", snippet)


def test_a_field_restricted_word_is_marked_in_that_field_only() -> None:
    assert marks("valve.ti.") == ([], "")  # no valve in the title: nothing matched, nothing marked
    assert marks("valve.clm.") == (
        [],
        "A camera comprising a [valve] and a spring. The [valve] is closed by the spring.",
    )
    assert marks("camera.ti. AND valve.ab.")[0] == ["camera"]
    assert "[valve] closes" in marks("camera.ti. AND valve.ab.")[1]


def test_proximity_marks_the_words_within_the_distance_and_not_a_lone_occurrence() -> None:
    title, snippet = marks("lens ADJ mount")
    assert title == ["Lens", "mount"]
    assert "camera mount. Here a [lens] [mount] holds it" in snippet  # "camera mount": mount without a lens before it

    assert marks("valve WITH spring")[1].startswith("A camera comprising a [valve] and a [spring]. The [valve] is")
    assert "[lens]" not in marks("valve WITH spring")[1]
    assert "[lens] is glass" not in marks("lens SAME valve")[1]  # claim 2's lens shares no paragraph with a valve


def test_a_negated_proximity_marks_the_words_that_stay_apart() -> None:
    _, snippet = marks("lens NOT WITH mount")
    assert (
        snippet == "… camera of claim 1, wherein the [lens] is glass."
    )  # every other lens shares a sentence with a mount


def test_phrases_and_truncations_mark_whole_matches() -> None:
    assert marks('"lens mount"')[0] == ["Lens", "mount"]
    assert "[closes]" in marks("clos$.ab.")[1]
    assert "[closed]" not in marks("clos$.ab.")[1]


def test_a_query_that_does_not_match_a_document_marks_nothing_in_it() -> None:
    assert marks("valve ADJ mount") == ([], "")
    assert marks("lens NOT camera") == ([], "")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["lens", "mount", "camera", "valve", "spring", "glass", "clos$"]), min_size=1, max_size=3),
    st.sampled_from(["", ".ti.", ".ab.", ".clm."]),
    st.sampled_from([" AND ", " OR ", " ADJ2 ", " NEAR3 ", " WITH ", " SAME "]),
)
def test_every_marked_word_is_a_query_word_in_the_queried_field(words: list[str], field: str, operator: str) -> None:
    try:
        tree = parse(f"({operator.join(words)}){field}")
    except QuerySyntaxError:  # WITH and SAME do not chain
        assume(False)
    document = Document(
        CAMERA, lexemes_of({m.group().lower() for t in _texts() for m in WORD.finditer(t)} | set(words))
    )
    positions = document.match(tree) or set()
    lexemes = lexemes_of(words)
    for position in positions:
        word = document.words[position]
        assert word.field in {"": "ABC", ".ti.": "A", ".ab.": "B", ".clm.": "C"}[field]
        assert any(
            document.lexemes[word.text] == lexemes.get(w) or (w.endswith("$") and word.text.startswith(w[:-1]))
            for w in words
        )


def _texts() -> list[str]:
    return [CAMERA.title, CAMERA.abstract, *(claim["text"] for claim in CAMERA.claims)]


def test_the_search_page_marks_a_field_restricted_match_where_it_is(client: Client) -> None:
    valve = factories.patent(
        title="Check valve with a spring",
        abstract="A housing holds a ball pressed against a seat.",
        claims=["A valve comprising a ball.", "The valve of claim 1, wherein a spring presses the ball."],
        origin="reference",
    )

    page = client.get("/search/", {"q": "spring.ti.", "mode": "fulltext"}).content.decode()

    assert f'class="result-title" href="{valve.get_absolute_url()}">Check valve with a <mark>spring</mark></a>' in page
    snippet = re.search(r'<p class="snippet">(.*?)</p>', page)[1]
    assert "<mark>" not in snippet  # the claims' spring did not match a title-only query
