"""What `make run` does to the store before it starts serving."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest

from allpatents.management.commands.serve import Command
from search.models import Patent
from search.publishing import vectors_out_of_date

pytestmark = pytest.mark.django_db


def _prepared() -> str:
    output = StringIO()
    Command(stdout=output).prepare_store()
    return output.getvalue()


def test_a_store_up_to_date_is_left_as_it_is(imported: dict[str, Patent]) -> None:
    before = {p.pk: list(p.embedding) for p in Patent.objects.all()}
    assert _prepared() == ""
    assert {p.pk: list(p.embedding) for p in Patent.objects.all()} == before


def test_a_store_embedded_by_another_model_is_reembedded_once(imported: dict[str, Patent]) -> None:
    other = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    Patent.objects.update(embedding=other / np.linalg.norm(other))

    assert _prepared() == "The store's vectors were made by another embedding model: re-embedding them (once).\n"
    assert vectors_out_of_date() is False
    assert _prepared() == ""
