"""``hybrid_rank`` works on arrays; this pins it to the slot-by-slot loop it replaced (kept here
as the oracle): same slots, same order, same scores, on random conversations, pools, filters and
speakers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiered_memory.recall.lexical import IndexedDoc, LexicalIndex
from tiered_memory.recall.ranking import RankingWeights, hybrid_rank


def _loop_rank(
    dense: Mapping[int, float],
    lexical: np.ndarray,
    index: LexicalIndex,
    allowed: np.ndarray,
    weights: RankingWeights,
    addressed: str = "",
) -> list[tuple[int, float]]:
    """The ranking as it was written before (one Python step per candidate)."""
    lexical = np.where(allowed, lexical, 0.0)
    positive = np.flatnonzero(lexical > 0)
    if positive.size > weights.pool:
        positive = positive[np.argpartition(-lexical[positive], weights.pool)[: weights.pool]]

    def standardize(values: np.ndarray) -> tuple[float, float]:
        if values.size == 0:
            return 0.0, 1.0
        spread = float(values.std())
        return float(values.mean()), spread if spread > 1e-9 else 1.0

    lex_mean, lex_std = standardize(lexical[positive])
    lex_floor = float(((lexical[positive] - lex_mean) / lex_std).min()) if positive.size else 0.0
    dense_values = np.fromiter(dense.values(), dtype=np.float64, count=len(dense))
    dense_mean, dense_std = standardize(dense_values)
    dense_floor = float(((dense_values - dense_mean) / dense_std).min()) if dense else 0.0

    def base(slot: int) -> float:
        similarity = dense.get(slot)
        dense_z = dense_floor if similarity is None else (similarity - dense_mean) / dense_std
        lexical_z = (lexical[slot] - lex_mean) / lex_std if lexical[slot] > 0 else lex_floor
        return weights.dense * dense_z + (1.0 - weights.dense) * max(lexical_z, lex_floor)

    floor = weights.dense * dense_floor + (1.0 - weights.dense) * lex_floor
    candidates = set(dense) | {int(s) for s in positive}
    for slot in list(candidates):
        candidates.update(n for n in index.neighbours(slot) if n is not None)
    bases = {slot: base(slot) for slot in candidates}
    by_session: dict[str, list[float]] = {}
    for slot, score in bases.items():
        by_session.setdefault(index.session(slot), []).append(score)
    strength = {
        s: sum(sorted(v)[-weights.session_top :]) / len(sorted(v)[-weights.session_top :])
        for s, v in by_session.items()
    }
    values = np.array([strength[index.session(slot)] for slot in bases], dtype=np.float64)
    mean, spread = standardize(values)
    prior = {slot: (strength[index.session(slot)] - mean) / spread for slot in bases}

    def lifted(slot: int) -> float:
        return bases[slot] + weights.session * prior[slot]

    ranked = []
    for slot in candidates:
        if not allowed[slot]:
            continue
        if index.role(slot) in weights.self_contained_roles:
            score = lifted(slot) + weights.neighbour * floor
        else:
            neighbours = [
                lifted(n) if n in bases else floor for n in index.neighbours(slot) if n is not None
            ]
            score = lifted(slot) + weights.neighbour * max(neighbours, default=floor)
        if addressed and index.name(slot) not in ("", addressed):
            score -= weights.other_speaker
        ranked.append((slot, score))
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked


NAMES = ["", "Ana", "Kha"]
ROLES = ["user", "assistant", "tool"]


@st.composite
def rankings(draw: st.DrawFn) -> tuple[LexicalIndex, dict[int, float], np.ndarray, np.ndarray, str]:
    count = draw(st.integers(1, 60))
    index = LexicalIndex()
    docs = []
    for n in range(count):
        session = draw(st.sampled_from(["s1", "s2", "s3", "s4"]))
        meta = {
            "session_id": session, "seq": draw(st.integers(0, 40)), "role": draw(st.sampled_from(ROLES)),
            "name": draw(st.sampled_from(NAMES)), "created_ts": float(n),
        }  # fmt: skip
        docs.append(IndexedDoc(f"{session}\x1fm{n}", f"text {n}", meta))
    index.add(docs)
    removed = draw(st.lists(st.sampled_from([d.key for d in docs]), max_size=5))
    index.remove(removed)
    size = len(index.docs)
    live = [s for s in range(size) if index.docs[s] is not None]
    in_pool = draw(st.lists(st.sampled_from(live), unique=True, max_size=len(live))) if live else []
    dense = {s: draw(st.floats(-1.0, 1.0)) for s in in_pool}
    lexical = np.array(
        [
            draw(st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.5, draw(st.floats(0, 9))]))
            for _ in range(size)
        ]
    )
    allowed = index.mask()
    if draw(st.booleans()):  # a filter
        allowed &= np.array([draw(st.booleans()) for _ in range(size)])
    return index, dense, lexical, allowed, draw(st.sampled_from(["", "Ana", "Kha"]))


@settings(max_examples=300, deadline=None)
@given(case=rankings(), pool=st.sampled_from([3, 100]))
def test_the_array_ranking_equals_the_loop(
    case: tuple[LexicalIndex, dict[int, float], np.ndarray, np.ndarray, str], pool: int
) -> None:
    index, dense, lexical, allowed, addressed = case
    weights = RankingWeights(pool=pool)
    got = hybrid_rank(dense, lexical, index, allowed, weights, addressed)  # type: ignore[arg-type]
    want = _loop_rank(dense, lexical, index, allowed, weights, addressed)
    assert [slot for slot, _ in got] == [slot for slot, _ in want]
    assert [score for _, score in got] == pytest.approx([score for _, score in want], rel=1e-12)
