"""The scale benchmark's bulk load: what `bench_search` COPYs in is a store the site can search."""

import numpy as np
import pytest

from search import searching
from search.benchmarks import speed, synthetic, worst
from search.importing import SAMPLE_CORPUS, read_records
from search.models import Patent, PatentPassage
from search.searching import Filters


@pytest.fixture
def pool() -> synthetic.SentencePool:
    # Random unit vectors stand in for MiniLM's: the load copies them, it never reads their meaning.
    records = [record for _, record in read_records(SAMPLE_CORPUS)][:30]
    vectors = np.random.default_rng(0).normal(size=(len(synthetic.SentencePool.texts(records)), 384))
    return synthetic.SentencePool(records, (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("f4"))


@pytest.mark.django_db(transaction=True)
def test_the_bulk_load_stores_every_document_and_its_passages_and_rebuilds_the_indexes(pool) -> None:
    speed.reset()
    speed.load(pool, 45, workers=2)
    speed.build_indexes(memory="64MB")

    assert speed.document_count() == 45
    assert PatentPassage.objects.count() == sum(len(p.passages) for p in synthetic.generate(pool, 45))
    assert set(speed.index_sizes()) == {*speed.BULK_INDEXES[Patent], "search_patent", "search_patentpassage"}
    first = Patent.objects.get(pk=1)
    assert first.source_id == "SYN00000000"
    assert first.published_at is not None
    assert len(first.sha256) == 64
    word = first.title.split()[0]
    assert 1 in [hit.patent.pk for hit in searching.search(f"{word}.ti.", mode="fulltext", limit=50).hits]
    assert searching.semantic_ranking(first.embedding, Filters(), depth=1)[0][0] == 1


@pytest.mark.django_db(transaction=True)
def test_every_costliest_query_within_the_limits_answers_or_is_refused_with_a_message(pool, monkeypatch) -> None:
    monkeypatch.setattr(searching, "MAX_TEXT_LENGTH", 5_000)  # the pasted text's cost is the model's, not measured here
    speed.reset()
    speed.load(pool, 45, workers=1)
    speed.build_indexes(memory="64MB")

    measured = worst.measure()

    assert len({row["name"] for row in measured}) == len(worst.attempts())
    assert [row["ms"] for row in measured] == sorted((row["ms"] for row in measured), reverse=True)
    outcomes = {row["name"]: row["outcome"] for row in measured}
    assert outcomes["32 levels of parentheses"].endswith(" results")
    assert outcomes["truncation of a short stem (con$)"].endswith(" results")
    answered = {name for name, outcome in outcomes.items() if outcome.endswith((" results", "answered"))}
    refused = {name for name, outcome in outcomes.items() if outcome.startswith("refused: ")}
    assert answered | refused == set(outcomes)
