"""The known-item evaluation's own arithmetic: the comparison fusion it measures hybrid against."""

import pytest

from search.benchmarks.relevance import reciprocal_rank_fusion


def test_reciprocal_rank_fusion_sums_weighted_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], k=60)
    assert [patent_id for patent_id, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)

    weighted = reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], weights=(1.0, 0.2), k=1)
    assert weighted == [(1, pytest.approx(0.5)), (2, pytest.approx(1 / 3 + 0.1)), (3, pytest.approx(0.2 / 3))]
