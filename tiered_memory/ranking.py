"""Recall ranking, pure: hybrid dense + BM25 fusion with conversational neighbours.

Each retriever's scores are standardized over its own candidate pool (z-scores, so neither scale
dominates) and averaged with equal weight. Then every candidate also takes a share of the best of
its two neighbours in the same session: in a conversation the turn that answers a question is
often the one right after the turn that matches it, and a turn continues the one before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .lexical import LexicalIndex


@dataclass(frozen=True)
class RankingWeights:
    """Fixed by principle (equal fusion, half-weight neighbours), not fitted to a benchmark."""

    dense: float = 0.5
    neighbour: float = 0.5
    pool: int = 100


def _standardize(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 1.0
    spread = float(values.std())
    return float(values.mean()), spread if spread > 1e-9 else 1.0


def hybrid_rank(
    dense: Mapping[int, float],
    lexical: np.ndarray,
    index: LexicalIndex,
    allowed: np.ndarray,
    weights: RankingWeights | None = None,
) -> list[tuple[int, float]]:
    """Slots ranked best first.

    Args:
        dense: slot -> cosine similarity, for the dense retriever's pool.
        lexical: BM25 score of every slot (``LexicalIndex.scores``).
        index: gives each slot's session neighbours.
        allowed: boolean mask of the slots that may be returned (filters, liveness).
    """
    weights = weights or RankingWeights()
    lexical = np.where(allowed, lexical, 0.0)
    positive = np.flatnonzero(lexical > 0)
    if positive.size > weights.pool:
        positive = positive[np.argpartition(-lexical[positive], weights.pool)[: weights.pool]]
    lex_mean, lex_std = _standardize(lexical[positive])
    lex_floor = float(((lexical[positive] - lex_mean) / lex_std).min()) if positive.size else 0.0

    dense_values = np.fromiter(dense.values(), dtype=np.float64, count=len(dense))
    dense_mean, dense_std = _standardize(dense_values)
    dense_floor = float(((dense_values - dense_mean) / dense_std).min()) if dense else 0.0

    def base(slot: int) -> float:
        similarity = dense.get(slot)
        dense_z = dense_floor if similarity is None else (similarity - dense_mean) / dense_std
        lexical_z = (lexical[slot] - lex_mean) / lex_std if lexical[slot] > 0 else lex_floor
        lexical_z = max(lexical_z, lex_floor)
        return weights.dense * dense_z + (1.0 - weights.dense) * lexical_z

    floor = weights.dense * dense_floor + (1.0 - weights.dense) * lex_floor
    candidates = set(dense) | {int(s) for s in positive}
    for slot in list(candidates):
        candidates.update(n for n in index.neighbours(slot) if n is not None)
    cache: dict[int, float] = {}

    def cached(slot: int | None) -> float:
        if slot is None:
            return floor
        if slot not in cache:
            cache[slot] = base(slot)
        return cache[slot]

    ranked = []
    for slot in candidates:
        if not allowed[slot]:
            continue
        before, after = index.neighbours(slot)
        score = cached(slot) + weights.neighbour * max(cached(before), cached(after))
        ranked.append((slot, score))
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked
