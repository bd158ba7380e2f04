"""Import of real patents from JSON Lines."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from search import importing
from search.documents import canonical_text, parse_claim, sha256_hex
from search.embedding import embed_passages
from search.importing import (
    SAMPLE_CORPUS,
    PrecomputedVectors,
    import_patents,
    parse_record,
    read_records,
    save_vectors,
)
from search.models import Origin, Patent, PatentPassage
from tests.conftest import SAMPLE

pytestmark = pytest.mark.django_db


def test_import_stores_every_record_with_its_fields(imported: dict[str, Patent]) -> None:
    assert sorted(imported) == ["US11147202B2", "US11147203B2", "US11213100", "US11213186", "US20100100994A1"]
    truck = imported["US11147202B2"]
    assert truck.title == "Wheeled hand truck"
    assert truck.origin == Origin.REFERENCE
    assert str(truck.source_date) == "2021-10-19"
    assert [claim["number"] for claim in truck.claims] == list(range(1, 10))
    assert truck.claims[8]["text"].startswith("The wheeled hand truck of claim 8 wherein")
    assert truck.text == canonical_text(title=truck.title, abstract=truck.abstract, claims=truck.claims)
    assert truck.sha256 == sha256_hex(truck.text)
    assert len(truck.embedding) == 384


def test_import_keeps_cancelled_claim_ranges_as_published(imported: dict[str, Patent]) -> None:
    drysuit = imported["US20100100994A1"]
    assert drysuit.claims[0] == {"number": 1, "through": 9, "text": "(canceled)"}
    assert "\n1-9. (canceled)\n10. A device for a drysuit" in drysuit.text


def test_import_of_the_same_file_twice_adds_nothing(imported: dict[str, Patent]) -> None:
    before = {p.pk: p.sha256 for p in Patent.objects.all()}

    result = import_patents(SAMPLE)

    assert (result.created, result.skipped) == (0, 5)
    assert {p.pk: p.sha256 for p in Patent.objects.all()} == before


def test_command_reports_what_it_imported(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("import_patents", str(SAMPLE), verbosity=0)
    call_command("import_patents", str(SAMPLE), verbosity=0)
    assert capsys.readouterr().out.splitlines() == [
        f"Imported 5 patents from {SAMPLE}; 0 were already stored.",
        f"Imported 0 patents from {SAMPLE}; 5 were already stored.",
    ]


def test_malformed_line_stops_the_import_naming_it_and_writes_nothing_of_its_batch(tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines()
    broken = json.loads(lines[3])
    del broken["abstract"]
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join([*lines[:3], json.dumps(broken), lines[4]]) + "\n")

    with pytest.raises(CommandError) as error:
        call_command("import_patents", str(path), "--batch-size", "2", verbosity=0)

    assert str(error.value) == f"Import stopped: {path}, line 4: 'abstract' must be a non-empty string"
    # Lines 1-2 formed a complete batch and were stored; lines 3-4 were not.
    assert sorted(Patent.objects.values_list("source_id", flat=True)) == ["US11147202B2", "US11147203B2"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[1, 2]", "not a JSON object"),
        ('{"id": "US1", "title": "T", "abstract": "A", "claims": []}', "'claims' must be a non-empty list"),
        ('{"id": "US1", "title": "T", "abstract": "A", "claims": [1]}', "'claims' must be a list of strings"),
        ('{"id": "US1", "title": "", "abstract": "A", "claims": ["1. C"]}', "'title' must be a non-empty string"),
        (
            '{"id": "US1", "title": "T", "abstract": "A", "claims": ["1. C"], "date": "Jan 2022"}',
            "'date' must be YYYY-MM-DD or null, not 'Jan 2022'",
        ),
    ],
)
def test_parse_record_names_the_problem(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_record(line)


@pytest.mark.parametrize(
    ("raw", "claim"),
    [
        ("3. The method of claim 1.", {"number": 3, "text": "The method of claim 1."}),
        ("12) A device.", {"number": 12, "text": "A device."}),
        ("1-18. (canceled)", {"number": 1, "through": 18, "text": "(canceled)"}),
        ("A claim without a number.", {"number": 7, "text": "A claim without a number."}),
    ],
)
def test_parse_claim(raw: str, claim: dict[str, object]) -> None:
    assert parse_claim(raw, 7) == claim


@pytest.fixture
def corpus_with_vectors(tmp_path: Path) -> Path:
    corpus = tmp_path / "patents.jsonl"
    corpus.write_text(SAMPLE.read_text())
    save_vectors(corpus)
    return corpus


def _embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles embedded from here on (the real model still embeds them)."""
    titles: list[str] = []

    def recording(documents):
        titles.extend(document.title for document in documents)
        return embed_passages(documents)

    monkeypatch.setattr(importing, "embed_passages", recording)
    return titles


def test_an_import_with_precomputed_vectors_embeds_nothing_and_stores_the_same_vectors(
    corpus_with_vectors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = PrecomputedVectors.beside(corpus_with_vectors)
    embedded = _embedded(monkeypatch)

    result = import_patents(corpus_with_vectors)

    assert result.created == 5
    assert embedded == []
    for patent in Patent.objects.all():
        record = next(r for _, r in read_records(corpus_with_vectors) if r.source_id == patent.source_id)
        vectors = saved.get(record)
        assert list(patent.embedding) == pytest.approx(list(vectors.mean), abs=1e-6)
        stored = [list(p.embedding) for p in PatentPassage.objects.filter(patent=patent).order_by("position")]
        assert len(stored) == len(vectors.passages)
        for passage, expected in zip(stored, vectors.passages, strict=True):
            assert passage == pytest.approx(list(expected), abs=1e-6)


def test_a_record_whose_text_changed_since_its_vector_was_saved_is_embedded_again(
    corpus_with_vectors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = corpus_with_vectors.read_text().splitlines()
    first = json.loads(lines[0])
    first["title"] = "A retitled hand truck"
    corpus_with_vectors.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    embedded = _embedded(monkeypatch)

    import_patents(corpus_with_vectors)

    assert embedded == ["A retitled hand truck"]


def test_vectors_saved_by_another_model_or_recipe_are_not_used(
    corpus_with_vectors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "model_fingerprint", lambda: "another-model:0123456789abcdef:recipe-1")
    embedded = _embedded(monkeypatch)

    import_patents(corpus_with_vectors)

    assert len(embedded) == 5


def test_the_bundled_sample_ships_its_vectors_for_the_bundled_embedding_model() -> None:
    saved = PrecomputedVectors.beside(SAMPLE_CORPUS)

    assert len(saved) == sum(1 for _ in read_records(SAMPLE_CORPUS))
