"""verify_publications --findability: sampled documents found by search and linked from sitemap and browse pages."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from publications import findability
from search.models import Patent
from tests import factories

pytestmark = pytest.mark.django_db


def run(*options: str) -> tuple[list[str], CommandError | None]:
    """The command's output lines, and the error it exited 1 with (or None)."""
    output = io.StringIO()
    try:
        call_command("verify_publications", "--findability", *options, stdout=output)
    except CommandError as error:
        return output.getvalue().splitlines(), error
    return output.getvalue().splitlines(), None


def test_every_document_of_a_small_corpus_is_found_from_its_own_key_phrase(imported: dict[str, Patent]) -> None:
    lines, error = run()

    assert error is None
    assert json.loads(lines[-1]) == {"checked": 5, "found": 5, "share": 1.0, "goal": 0.99}
    assert lines[:-1] == []


def test_the_key_phrase_is_the_rarest_words_of_the_title_and_first_claim(imported: dict[str, Patent]) -> None:
    for patent in imported.values():
        words = findability.key_phrase(patent).split()
        source = set(re.findall(r"[a-z][a-z-]{2,}", (patent.title + " " + patent.claims[0]["text"]).lower()))
        assert 1 <= len(words) <= findability.QUERY_WORDS
        assert set(words) <= source


def test_documents_a_searcher_cannot_tell_apart_are_reported_as_misses_and_the_command_fails(
    imported: dict[str, Patent],
) -> None:
    # Twelve documents with one title and one first claim: at most ten can be in the top ten.
    for number in range(12):
        factories.patent(
            title="Telescoping gutter scoop",
            claims=[
                "A telescoping gutter scoop comprising a hinged blade.",
                f"The scoop of claim 1, variant {number}.",
            ],
        )

    lines, error = run("--minimum", "17")

    assert error is not None
    assert str(error).endswith("sampled documents found, below 99%")
    summary, misses = json.loads(lines[-1]), lines[:-1]
    assert summary["checked"] == 17
    assert summary["found"] == 17 - len(misses)
    assert len(misses) >= 2
    assert all(re.fullmatch(r"Miss: ATP-\d+: not in the top 10 for '.*gutter.*'", miss) for miss in misses)


def test_a_sample_takes_a_share_of_every_recent_day_and_tops_up_to_the_minimum(imported: dict[str, Patent]) -> None:
    assert len(findability.sample(days=7, share=0.01, minimum=3, seed=1)) == 3
    assert len(findability.sample(days=7, share=0.5, minimum=1, seed=1)) == 3  # ceil(0.5 * 5)
    assert findability.sample(days=7, share=0.01, minimum=3, seed=1) == findability.sample(
        days=7, share=0.01, minimum=3, seed=1
    )
