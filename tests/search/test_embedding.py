"""Long patents are embedded whole, not cut to the model's first 256 word pieces."""

import numpy as np
import pytest

from search.embedding import DocumentText, chunk_document, embed_documents, load_model
from search.models import Patent

pytestmark = pytest.mark.django_db


def test_every_chunk_fits_the_model_window_and_the_claims_are_all_covered(imported: dict[str, Patent]) -> None:
    tractor = imported["US11147203B2"]  # 20 claims, several thousand word pieces
    tokenizer = load_model().tokenizer

    chunks = chunk_document(DocumentText(tractor.title, tractor.abstract, tractor.claims))

    assert len(chunks) > 3
    assert max(len(tokenizer(chunk, add_special_tokens=False)["input_ids"]) for chunk in chunks) <= 254
    assert chunks[0].startswith("Middle mounted implement tractor. ")
    assert "20. The middle mounted implement tractor of claim 19" in " ".join(chunks)


def test_an_over_long_claim_is_cut_at_token_boundaries_without_losing_text() -> None:
    claim_text = " ".join(f"element{i} coupled to" for i in range(300))
    chunks = chunk_document(DocumentText("T", "A.", [{"number": 1, "text": claim_text}]))
    assert chunks[0] == "T. A."
    assert "".join(chunks[1:]).replace(" ", "") == f"1. {claim_text}".replace(" ", "")


def test_the_last_claims_move_the_document_vector(db: None) -> None:
    claims = [{"number": i, "text": "A fastening clip for a garden hose reel. " * 6} for i in range(1, 8)]
    late = [*claims, {"number": 8, "text": "wherein the reel carries a solar panel and a pump. " * 6}]

    plain, with_late_claim = embed_documents(
        [DocumentText("Hose reel", "A hose reel.", claims), DocumentText("Hose reel", "A hose reel.", late)]
    )

    assert float(np.linalg.norm(plain)) == pytest.approx(1.0, abs=1e-5)
    assert float(plain @ with_late_claim) < 0.99


def test_a_pasted_text_is_embedded_from_at_most_the_chunk_limit_spread_over_it(monkeypatch) -> None:
    from search import embedding

    paragraphs = [f"Paragraph {number}: a valve with a spring holds the door." for number in range(400)]
    chunks = embedding.chunk_pieces(paragraphs)
    embedded: list[list[str]] = []
    real = embedding.embed_texts
    monkeypatch.setattr(embedding, "MAX_QUERY_CHUNKS", 4)
    monkeypatch.setattr(embedding, "embed_texts", lambda texts: embedded.append(list(texts)) or real(texts))

    vector = embedding.embed_query("\n".join(paragraphs))

    assert len(chunks) > embedding.MAX_QUERY_CHUNKS
    assert len(embedded) == 1
    assert embedded[0] == [chunks[0], chunks[6], chunks[13], chunks[19]]
    mean = real(embedded[0]).mean(axis=0)
    assert np.allclose(vector, mean / np.linalg.norm(mean), atol=1e-6)


def test_a_query_asked_again_is_not_embedded_again(monkeypatch) -> None:
    from search import embedding

    forward_passes: list[str] = []
    real = embedding._embed_query
    monkeypatch.setattr(embedding, "_embed_query", lambda text: forward_passes.append(text) or real(text))

    first = embedding.embed_query("a hose reel with a crank")
    again = embedding.embed_query("a hose reel with a crank")
    other = embedding.embed_query("a hose reel with a motor")

    assert forward_passes == ["a hose reel with a crank", "a hose reel with a motor"]
    assert np.array_equal(first, again)
    assert first.dtype == again.dtype == np.float32
    assert not np.array_equal(first, other)
