"""The known-item evaluation's own arithmetic, and its hand-written paraphrase set."""

import json
from collections import Counter

import pytest
from django.conf import settings

from search.benchmarks import relevance
from search.benchmarks.relevance import reciprocal_rank_fusion


def test_reciprocal_rank_fusion_sums_weighted_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], k=60)
    assert [patent_id for patent_id, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)

    weighted = reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], weights=(1.0, 0.2), k=1)
    assert weighted == [(1, pytest.approx(0.5)), (2, pytest.approx(1 / 3 + 0.1)), (3, pytest.approx(0.2 / 3))]


def test_every_paraphrase_shares_no_five_word_run_with_its_target() -> None:
    corpus = {}
    with (settings.BASE_DIR / "data" / "patents-sample" / "patents.jsonl").open() as lines:
        for line in lines:
            record = json.loads(line)
            corpus[record["id"]] = " \n ".join([record["title"], record["abstract"], *record["claims"]])
    queries = relevance.paraphrases()

    assert len(queries) >= 300
    assert len({query["target"] for query in queries}) == len(queries)
    assert {query["target"] for query in queries} <= set(corpus)
    shared = {query["target"]: relevance.shared_runs(query["query"], corpus[query["target"]]) for query in queries}
    assert {target: runs for target, runs in shared.items() if runs} == {}


def test_shared_runs_ignore_case_and_punctuation() -> None:
    text = "A hand truck, comprising: a footplate having front and rear ends."
    assert relevance.shared_runs("THE footplate having front and rear wheels", text) == {
        "footplate having front and rear"
    }
    assert relevance.shared_runs("a footplate with front and rear ends", text) == set()


def test_the_halves_split_the_paraphrased_documents_about_evenly() -> None:
    halves = Counter(relevance.half(query["target"]) for query in relevance.paraphrases())
    assert set(halves) == {"tune", "test"}
    assert abs(halves["tune"] - halves["test"]) < 0.2 * sum(halves.values())
