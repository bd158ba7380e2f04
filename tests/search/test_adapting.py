"""Adapting the embedding model: the pairs it learns from, its batches, its loss, a short real run."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors import safe_open

from search import adapting
from search.adapting import Pair, Recipe, batches, contrastive_loss, make_pairs
from search.embedding import stock_model_path
from search.importing import read_records
from tests.conftest import SAMPLE


def _fields(title: str, dependent: bool = True) -> dict[str, str]:
    parts = {
        "title": title,
        "abstract": f"{title} abstract.",
        "sentence": f"{title} sentence.",
        "claim": f"{title} claim 1.",
        "title_abstract": f"{title}. {title} abstract.",
    }
    if dependent:
        parts["dependent"] = f"The {title} of claim 1."
    return parts


def test_each_pair_takes_its_hard_negative_from_the_nearest_other_patent() -> None:
    fields = [_fields("reel"), _fields("crank", dependent=False), _fields("hose")]
    # Row i: patent i's neighbours, nearest first (itself, unless a twin is nearer).
    neighbours = np.array([[0, 2], [1, 0], [0, 2]])

    pairs = make_pairs(fields, neighbours)

    assert [(p.document, p.query, p.positive, p.negative) for p in pairs if p.document == 0] == [
        (0, "reel", "reel abstract.", "hose abstract."),
        (0, "reel abstract.", "reel claim 1.", "hose claim 1."),
        (0, "reel sentence.", "reel claim 1.", "hose claim 1."),
        (0, "The reel of claim 1.", "reel. reel abstract.", "hose. hose abstract."),
    ]
    assert next(p.negative for p in pairs if p.document == 2) == "reel abstract."
    assert len([p for p in pairs if p.document == 1]) == 3  # no dependent claim, no such pair


def test_independent_claim_skips_cancelled_and_dependent_ones() -> None:
    claims = [
        {"number": 1, "through": 3, "text": "(canceled)"},
        {"number": 4, "text": "The reel of claim 1, wherein the drum turns."},
        {"number": 5, "text": "A hose reel comprising a drum."},
    ]
    assert adapting._independent(claims) == claims[2]  # type: ignore[arg-type]


def test_no_batch_holds_one_document_twice() -> None:
    pairs = [Pair(document, f"q{document}.{k}", "p", "n") for document in range(20) for k in range(3)]

    planned = batches(pairs, 8, random.Random(1))

    assert [len(batch) for batch in planned] == [8] * len(planned)
    assert all(len({pair.document for pair in batch}) == 8 for batch in planned)
    assert len(planned) == 7  # 60 pairs: 7 full batches of distinct documents, the rest too few


def test_the_loss_is_low_when_each_query_is_its_own_positive_and_high_when_they_are_crossed() -> None:
    eye = torch.eye(8)
    queries, negatives = eye[:4], eye[4:]  # every negative orthogonal to every query
    aligned = contrastive_loss(queries, queries, negatives, scale=2.0)
    crossed = contrastive_loss(queries, torch.roll(queries, 2, dims=0), negatives, scale=2.0)

    # Each query: its positive at logit 2, the seven others at 0; each positive: its query at 2, three at 0.
    assert float(aligned) == pytest.approx((math.log(1 + 7 * math.exp(-2)) + math.log(1 + 3 * math.exp(-2))) / 2)
    # Crossed, the right answer is at 0 and one wrong one at 2.
    assert float(crossed) == pytest.approx((math.log(math.exp(2) + 7) + math.log(math.exp(2) + 3)) / 2)


def test_a_short_run_trains_and_saves_a_half_precision_model_that_embeds(tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    documents = [record for _, record in read_records(SAMPLE)]
    result = adapting.adapt(stock_model_path(), documents, tmp_path, Recipe(batch_size=4, max_tokens=32))

    assert (result.documents, result.steps) == (5, 4)  # 18 pairs, no batch with one patent twice
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        names = weights.keys()
        assert {weights.get_tensor(name).dtype for name in names} == {torch.float16}
    model = SentenceTransformer(str(tmp_path), device="cpu", model_kwargs={"dtype": torch.float32})
    vector = model.encode(["A hose reel with a crank."], normalize_embeddings=True)
    assert vector.shape == (1, 384)
    assert vector.dtype == np.float32
    stock = SentenceTransformer(stock_model_path(), device="cpu").encode(["A hose reel with a crank."])
    assert not np.allclose(vector, stock / np.linalg.norm(stock), atol=1e-4)  # it learned something


def test_command_trains_and_reports_what_it_did_as_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("adapt_embedder", "--output", str(tmp_path), "--documents", "8", "--batch-size", "4", verbosity=0)

    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (result["output"], result["documents"]) == (str(tmp_path), 8)
    assert (tmp_path / "model.safetensors").is_file()


def test_command_says_when_there_are_too_few_documents_for_a_batch(tmp_path) -> None:
    with pytest.raises(CommandError, match="3 documents are too few for one batch of 32 different ones"):
        call_command("adapt_embedder", "--output", str(tmp_path), "--documents", "3", verbosity=0)
