"""Pure scoring functions: evidence recall, nDCG with binary relevance, percentiles."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence


def _dedupe(ranked: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in ranked:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Fraction of ``relevant`` found in the first ``k`` distinct items of ``ranked``."""
    if k <= 0:
        raise ValueError("k must be positive")
    wanted = set(relevant)
    if not wanted:
        raise ValueError("recall is undefined without relevant items")
    top = set(_dedupe(ranked)[:k])
    return len(top & wanted) / len(wanted)


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Normalized DCG over the first ``k`` distinct items, binary relevance, log2 discount."""
    if k <= 0:
        raise ValueError("k must be positive")
    wanted = set(relevant)
    if not wanted:
        raise ValueError("nDCG is undefined without relevant items")
    dcg = sum(
        1.0 / math.log2(rank + 2) for rank, item in enumerate(_dedupe(ranked)[:k]) if item in wanted
    )
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(wanted))))
    return dcg / ideal


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be in [0, 100]")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def percentiles(values: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., ...}``; empty dict for no values."""
    if not values:
        return {}
    return {f"p{q:g}": percentile(values, q) for q in qs}


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def average_rows(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Column means of metric rows that share the same keys."""
    if not rows:
        return {}
    return {key: mean([row[key] for row in rows]) for key in rows[0]}
