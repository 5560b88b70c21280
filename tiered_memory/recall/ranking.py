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
    """What the ranking reads of the documents besides scores (``Lexicon``, ``SessionSlots``),
    for an array of slots at once."""

    def neighbour_slots(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous and next live slot of each slot's session (-1: none)."""
        ...

    def session_codes(self, slots: np.ndarray) -> np.ndarray:
        """One integer per slot, equal for slots of the same session."""
        ...

    def role_in(self, slots: np.ndarray, roles: Iterable[str]) -> np.ndarray:
        """Whether each slot's role is one of ``roles``."""
        ...

    def written_by_other(self, slots: np.ndarray, author: str) -> np.ndarray:
        """Whether each slot has a name that is not ``author`` (no name: False)."""
        ...


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

    dense_slots = np.fromiter(dense.keys(), dtype=np.int64, count=len(dense))
    dense_values = np.fromiter(dense.values(), dtype=np.float64, count=len(dense))
    dense_mean, dense_std = _standardize(dense_values)
    dense_floor = float(((dense_values - dense_mean) / dense_std).min()) if dense else 0.0
    floor = weights.dense * dense_floor + (1.0 - weights.dense) * lex_floor

    pooled = np.union1d(dense_slots, positive)
    before, after = index.neighbour_slots(pooled)
    slots = np.union1d(pooled, np.concatenate([before[before >= 0], after[after >= 0]]))
    if not slots.size:
        return []

    similarity = np.full(slots.size, np.nan)
    if dense:
        similarity[np.searchsorted(slots, dense_slots)] = dense_values
    dense_z = np.where(np.isnan(similarity), dense_floor, (similarity - dense_mean) / dense_std)
    matched = lexical[slots]
    lexical_z = np.where(matched > 0, (matched - lex_mean) / lex_std, lex_floor)
    lexical_z = np.maximum(lexical_z, lex_floor)
    bases = weights.dense * dense_z + (1.0 - weights.dense) * lexical_z
    lifted = bases + weights.session * _session_prior(
        bases, index.session_codes(slots), weights.session_top
    )

    def neighbour_value(neighbour: np.ndarray) -> np.ndarray:
        """The lifted score of each neighbour; ``floor`` off the candidates, -inf for none."""
        at = np.minimum(np.searchsorted(slots, neighbour), slots.size - 1)
        held = slots[at] == neighbour
        return np.where(neighbour < 0, -np.inf, np.where(held, lifted[at], floor))

    before, after = index.neighbour_slots(slots)
    best = np.maximum(neighbour_value(before), neighbour_value(after))
    share = np.where(np.isneginf(best), floor, best)
    share = np.where(index.role_in(slots, weights.self_contained_roles), floor, share)
    scores = lifted + weights.neighbour * share
    if addressed:
        scores = scores - weights.other_speaker * index.written_by_other(slots, addressed)
    keep = allowed[slots]
    order = np.lexsort((slots[keep], -scores[keep]))
    return list(zip(slots[keep][order].tolist(), scores[keep][order].tolist(), strict=True))


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


def _session_prior(bases: np.ndarray, sessions: np.ndarray, top: int) -> np.ndarray:
    """Each candidate's session strength (mean of its session's ``top`` best), standardized."""
    codes, group = np.unique(sessions, return_inverse=True)
    strength = np.empty(codes.size)
    order = np.lexsort((bases, group))  # by session, then score ascending
    ends = np.searchsorted(group[order], np.arange(codes.size), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    for n, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        best = bases[order[max(start, end - top) : end]].tolist()
        strength[n] = sum(best) / len(best)  # summed in ascending order, as before
    values = strength[group]
    mean, spread = _standardize(values)
    return (values - mean) / spread
