"""A changed embedding model: the store notices, and re-embedding makes its vectors the model's again."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command

from search.embedding import DocumentText, embed_passages
from search.models import Patent, PatentPassage
from search.publishing import reembed, vectors_out_of_date

pytestmark = pytest.mark.django_db


def _as_another_model_made_them(patent: Patent) -> None:
    """Vectors no model of ours would make of this text: a fixed random direction."""
    other = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    Patent.objects.filter(pk=patent.pk).update(embedding=other / np.linalg.norm(other))
    PatentPassage.objects.filter(patent=patent).update(embedding=other / np.linalg.norm(other))


def _expected(patent: Patent):
    return embed_passages([DocumentText(patent.title, patent.abstract, patent.claims)])[0]


def test_vectors_the_current_model_made_are_up_to_date(imported: dict[str, Patent]) -> None:
    assert vectors_out_of_date() is False


def test_an_empty_store_has_nothing_out_of_date(db: None) -> None:
    assert vectors_out_of_date() is False


@pytest.mark.parametrize("which", ["first", "last"])
def test_another_models_vectors_on_the_first_or_last_document_are_out_of_date(
    imported: dict[str, Patent], which: str
) -> None:
    patents = Patent.objects.order_by("id")
    _as_another_model_made_them(patents.first() if which == "first" else patents.last())
    assert vectors_out_of_date() is True


def test_reembedding_recomputes_every_vector_and_passage_and_leaves_the_text(imported: dict[str, Patent]) -> None:
    for patent in Patent.objects.all():
        _as_another_model_made_them(patent)
    texts = {p.pk: (p.text, p.sha256, p.published_at) for p in Patent.objects.all()}

    assert reembed(batch_size=2) == 5

    assert vectors_out_of_date() is False
    for patent in Patent.objects.all():
        expected = _expected(patent)
        assert np.allclose(patent.embedding, expected.mean, atol=1e-5)
        stored = [p.embedding for p in PatentPassage.objects.filter(patent=patent).order_by("position")]
        assert np.allclose(np.array(stored), expected.passages, atol=1e-5)
    assert {p.pk: (p.text, p.sha256, p.published_at) for p in Patent.objects.all()} == texts


def test_reembedding_resumes_after_the_last_id_it_reported(imported: dict[str, Patent]) -> None:
    ids = sorted(Patent.objects.values_list("id", flat=True))
    reported: list[tuple[int, int]] = []

    assert reembed(after_id=ids[1], batch_size=2, on_batch=lambda count, last: reported.append((count, last))) == 3

    assert reported == [(2, ids[3]), (1, ids[4])]


def test_command_reports_how_many_it_reembedded(
    imported: dict[str, Patent], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("reembed", verbosity=0)
    assert capsys.readouterr().out == "Re-embedded 5 documents.\n"
