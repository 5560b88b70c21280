"""Known-answer tests of tiered_memory_bench.metrics, computed by hand."""

from __future__ import annotations

import math

import pytest
from tiered_memory_bench.metrics import (
    average_rows,
    ndcg_at_k,
    percentile,
    percentiles,
    recall_at_k,
)


def test_recall_at_k_counts_the_fraction_of_evidence_in_the_top_k() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"a"}, 1) == 1.0
    assert recall_at_k(ranked, {"b"}, 1) == 0.0
    assert recall_at_k(ranked, {"b", "d"}, 2) == 0.5
    assert recall_at_k(ranked, {"b", "d"}, 4) == 1.0
    assert recall_at_k(ranked, {"a", "z"}, 10) == 0.5  # k beyond the list: what there is


def test_recall_ignores_duplicates_in_the_ranking() -> None:
    # "a" twice takes one slot: the top 2 distinct items are a, b.
    assert recall_at_k(["a", "a", "b"], {"b"}, 2) == 1.0


def test_ndcg_known_values() -> None:
    assert ndcg_at_k(["a", "b"], {"a"}, 10) == 1.0
    # one relevant item at rank 2: (1/log2 3) / (1/log2 2)
    assert ndcg_at_k(["x", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    # two relevant at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2 3)
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0
    # ideal DCG is capped at k relevant items
    assert ndcg_at_k(["a"], {"a", "b", "c"}, 1) == 1.0


def test_metrics_reject_undefined_inputs() -> None:
    with pytest.raises(ValueError):
        recall_at_k(["a"], set(), 1)
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_percentile_interpolates_linearly() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert percentile([7.0], 99) == 7.0
    assert percentiles([1.0, 2.0, 3.0], (50, 99)) == {"p50": 2.0, "p99": pytest.approx(2.98)}
    assert percentiles([]) == {}


def test_average_rows() -> None:
    rows = [{"r": 1.0, "n": 0.0}, {"r": 0.0, "n": 0.5}]
    assert average_rows(rows) == {"r": 0.5, "n": 0.25}
    assert average_rows([]) == {}
