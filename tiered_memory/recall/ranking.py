"""Recall ranking, pure: hybrid dense + BM25 fusion with conversational neighbours.

Each retriever's scores are standardized over its own candidate pool (z-scores, so neither scale
dominates) and averaged with equal weight. A session whose best turns match well lifts all its
turns a little (a session is about something). Then every candidate also takes a share of the best
of its two neighbours in the same session: in a conversation the turn that answers a question is
often the one right after the turn that matches it, and a turn continues the one before it.
A reply of the assistant takes no such share (``RankingWeights.self_contained_roles``): a user's
turn is recalled with the answer it got, but an answer is not recalled for the question it
answered; otherwise every long, on-topic reply next to a matching user turn crowds the user's
own statements out of the top k (LongMemEval-S dev, 12 questions: turn R@5 0.833 -> 0.958;
LoCoMo, where both speakers are people stored as users, is unchanged).
When the question names exactly one of the people whose messages carry a ``name`` ("What did
Ana paint?"), a turn someone else wrote takes a fixed penalty: the person asked about is the one
whose own words answer (LoCoMo dev: 96% of the evidence of such questions). Messages without a
name (a one-user chat, an assistant) are never penalized, so nothing changes without names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Neighbourhood(Protocol):
    """What the ranking reads of the documents besides scores (``Lexicon``, ``SessionSlots``)."""

    def neighbours(self, slot: int) -> tuple[int | None, int | None]: ...

    def role(self, slot: int) -> str: ...

    def session(self, slot: int) -> str: ...

    def name(self, slot: int) -> str: ...


@dataclass(frozen=True)
class RankingWeights:
    """Fixed by principle (equal fusion, half-weight neighbours), not fitted to a benchmark."""

    dense: float = 0.5
    neighbour: float = 0.5
    session: float = 0.3
    session_top: int = 3
    pool: int = 100
    #: roles whose turns take no share of their neighbours' scores (they still give theirs)
    self_contained_roles: tuple[str, ...] = ("assistant",)
    #: penalty of a turn written by someone other than the one person the question names
    other_speaker: float = 0.5


def _standardize(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 1.0
    spread = float(values.std())
    return float(values.mean()), spread if spread > 1e-9 else 1.0


def hybrid_rank(
    dense: Mapping[int, float],
    lexical: np.ndarray,
    index: Neighbourhood,
    allowed: np.ndarray,
    weights: RankingWeights | None = None,
    addressed: str = "",
) -> list[tuple[int, float]]:
    """Slots ranked best first.

    Args:
        dense: slot -> cosine similarity, for the dense retriever's pool.
        lexical: BM25 score of every slot.
        index: gives each slot's session neighbours.
        allowed: boolean mask of the slots that may be returned (filters, liveness).
        addressed: the author name the question is about (:func:`addressed_author`), or "".
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
    bases = {slot: base(slot) for slot in candidates}
    prior = _session_prior(bases, index, weights.session_top)

    def lifted(slot: int | None) -> float:
        if slot is None:
            return floor
        return bases[slot] + weights.session * prior.get(slot, 0.0)

    ranked = []
    for slot in candidates:
        if not allowed[slot]:
            continue
        if index.role(slot) in weights.self_contained_roles:
            score = lifted(slot) + weights.neighbour * floor
        else:
            before, after = index.neighbours(slot)
            neighbours = [
                lifted(n) if n in bases else floor for n in (before, after) if n is not None
            ]
            score = lifted(slot) + weights.neighbour * max(neighbours, default=floor)
        if addressed and index.name(slot) not in ("", addressed):
            score -= weights.other_speaker
        ranked.append((slot, score))
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked


def addressed_author(question: str, names: Iterable[str]) -> str:
    """The one author name (full, or its first word) the question mentions as a word, else ""
    (none, or several: then it is about no one person)."""
    found = set()
    for name in names:
        if not name.strip():
            continue
        first = name.split()[0]
        for form in {name, first}:
            if re.search(rf"(?<!\w){re.escape(form)}(?!\w)", question, re.IGNORECASE):
                found.add(name)
                break
    return found.pop() if len(found) == 1 else ""


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)  # a few numbers: numpy's mean costs more than it saves


def _session_prior(bases: Mapping[int, float], index: Neighbourhood, top: int) -> dict[int, float]:
    """Each candidate's session strength (mean of its session's ``top`` best), standardized."""
    by_session: dict[str, list[float]] = {}
    session_of: dict[int, str] = {}
    for slot, score in bases.items():
        session = index.session(slot)
        session_of[slot] = session
        by_session.setdefault(session, []).append(score)
    strength = {s: _mean(sorted(v)[-top:]) for s, v in by_session.items()}
    values = np.array([strength[session_of[slot]] for slot in bases], dtype=np.float64)
    mean, spread = _standardize(values)
    return {slot: (strength[session_of[slot]] - mean) / spread for slot in bases}
