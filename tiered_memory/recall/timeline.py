"""Facts as Tier-3 documents, and recall that knows time.

Facts (``tiered_memory.facts``) are indexed like messages, in the user's pseudo-session
:data:`FACTS_SESSION`: one document per fact, its text saying when it held ("User lives in Paris
(home, from 2026-05-01, was true until 2026-10-02)"), rewritten when the fact is superseded.
:class:`FactIndex` writes them after each compaction's fact pass and erases them with their
source messages.

Ranking (:func:`rerank`, pure): a fact or a turn that stated it counts as *stale* when the fact
no longer holds at the question's time — or, when the question names a time ("in June"), does
not hold then; stale candidates lose :attr:`TimelineWeights.stale` (facts) or
:attr:`TimelineWeights.stale_source` (their turns), so a current fact ranks above a superseded
one. A date phrase of the question (``recall.temporal``) lifts candidates said (facts: valid)
near it by up to :attr:`TimelineWeights.time`: a soft boost, never a filter. With ``as_of``, only
facts valid then and turns said up to then are returned. A said fact (a dated sentence of a
turn, ``Fact.said``) is a key of its turn: found with it, the turn takes the better score and
the fact, which the turn holds verbatim, is left out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..errors import TieredMemoryError
from ..facts import Fact, FactBook
from ..messages import Message
from ..state import StoredDocument
from ..steps import Call, Steps
from ..store import SessionStore
from .records import RecallHit, RecallQuery, hit_from_metadata, record_key
from .temporal import TimeRange, query_time_range, time_boost
from .vectors import UserVectors

FACTS_SESSION = "tm:facts"
"""The pseudo-session of a user's fact documents (recall with ``session_id=`` leaves them out)."""
FACT_ROLE = "fact"

logger = logging.getLogger("tiered_memory")


def fact_message_id(fact_id: int) -> str:
    return f"tm:fact:{fact_id}"


def fact_document(fact: Fact) -> StoredDocument:
    """What Tier 3 stores for a fact: its line, dated by when it started to hold."""
    return StoredDocument(
        session_id=FACTS_SESSION, message_id=fact_message_id(fact.fact_id), seq=fact.fact_id,
        role=FACT_ROLE, created_at=fact.valid_from.isoformat(), text=fact.text(),
    )  # fmt: skip


# --- ranking (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineWeights:
    """In units of the fused z-scores of ``hybrid_rank`` (fixed by principle, not fitted)."""

    time: float = 0.5
    """Most a candidate gains for lying inside the question's date range."""
    stale: float = 1.0
    """What a fact that does not hold at the question's time loses."""
    stale_source: float = 0.5
    """What a turn loses when every fact it stated is stale."""


@dataclass(frozen=True)
class TimeContext:
    """When a question is asked and which times it points to."""

    now: datetime
    as_of: datetime | None
    window: TimeRange | None

    @property
    def moment(self) -> datetime:
        return self.as_of or self.now


def time_context(request: RecallQuery) -> TimeContext:
    """The question's time (``now``, else ``as_of``, else the clock) and its date range."""
    as_of = _from_ts(request.as_of)
    now = _from_ts(request.now) or as_of or datetime.now(timezone.utc)
    return TimeContext(now, as_of, query_time_range(request.text, now))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked document (``slot`` >= 0) or a fact brought in for its chain (``fact``)."""

    slot: int
    score: float
    session_id: str
    message_id: str
    created_at: datetime
    fact: Fact | None = None


def holds(fact: Fact, context: TimeContext) -> bool:
    """Whether ``fact`` is the one that counts for this question (a said fact is an event:
    the question's date range lifts it, never makes it stale)."""
    if context.as_of is not None:
        return _valid_at(fact, context.as_of)
    if context.window is not None and not fact.said:
        return _overlaps(fact, context.window)
    return fact.valid_to is None or fact.valid_to > context.now


def _named(fact: Fact, query: str) -> bool:
    """The question names the fact's value ("when did I live in Paris?"): it asks about it."""
    value = fact.value.lower()
    if len(value) < 2 or value not in query:  # the regex only on a substring match: per fact,
        return False  # per recall, compiling one cost more than the rest of the re-ranking
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", query) is not None


def rerank(
    candidates: Sequence[Candidate],
    facts: Sequence[Fact],
    context: TimeContext,
    query: str = "",
    weights: TimelineWeights | None = None,
    *,
    inject: Callable[[Fact], bool] = lambda fact: True,
) -> list[Candidate]:
    """The candidates with time taken into account, best first.

    A stale fact (or a turn whose every fact is stale) loses :attr:`TimelineWeights.stale`
    (``stale_source``) and hands its score to the fact that holds for the same key; a turn
    hands its score to the facts it stated. A fact so lifted is brought in when the search did
    not find it (``inject`` says whether filters allow it): the current value outranks the old
    one that matched the words better, and a dated fact sits just below the turn it restates.
    Facts unknown to ``facts`` (erased) and facts not valid at ``as_of`` are dropped.
    """
    weights = weights or TimelineWeights()
    lowered = query.lower()
    by_id = {fact_message_id(f.fact_id): f for f in facts}
    stated: dict[tuple[str, str], list[Fact]] = {}
    for f in facts:
        stated.setdefault((f.session_id, f.message_id), []).append(f)
    holder: dict[str, Fact] = {}
    for f in sorted(facts, key=lambda f: f.valid_from):
        if holds(f, context):
            holder[f.attribute] = f  # the latest that holds
    stale = {f.fact_id for f in facts if not holds(f, context) and not _named(f, lowered)}
    out: dict[str, Candidate] = {}
    inherited: dict[str, float] = {}
    for c in candidates:
        score = c.score
        heirs: list[Fact | None] = []
        if c.session_id == FACTS_SESSION:
            fact = by_id.get(c.message_id)
            if fact is None or (context.as_of is not None and not _valid_at(fact, context.as_of)):
                continue
            if fact.fact_id in stale:
                score -= weights.stale
                heirs = [holder.get(fact.attribute)]
            if context.window is not None:
                boost = (
                    time_boost(fact.valid_from, context.window)
                    if fact.said
                    else _interval_boost(fact, context.window)
                )
                score += weights.time * boost
        else:
            own = stated.get((c.session_id, c.message_id), [])
            if own and all(f.fact_id in stale for f in own):
                score -= weights.stale_source
            # A stale turn hands its score to the fact that holds now, which ranks just above
            # it. A turn's own current facts rank just below it: they restate part of it, and
            # the part the question asks about may be another (a turn saying both "I'm Kha"
            # and "my dog is Biscuit" answers "my dog's name?"; its fact "name: Kha" does not).
            heirs = [holder.get(f.attribute) for f in own if f.fact_id in stale]
            for f in own:
                if f.fact_id not in stale and not f.said:
                    below = fact_message_id(f.fact_id)
                    inherited[below] = max(inherited.get(below, float("-inf")), c.score - 1e-3)
            if context.window is not None:
                score += weights.time * time_boost(c.created_at, context.window)
        for heir in heirs:
            if heir is not None:
                key = fact_message_id(heir.fact_id)
                lifted = max(c.score, score) + 1e-3
                inherited[key] = max(inherited.get(key, float("-inf")), lifted)
        out[f"{c.session_id}\x1f{c.message_id}"] = (
            c if score == c.score else replace(c, score=score)
        )
    for key, score in inherited.items():
        fact = by_id[key]
        slot_key = f"{FACTS_SESSION}\x1f{key}"
        found = out.get(slot_key)
        if found is not None:
            out[slot_key] = replace(found, score=max(found.score, score))
        elif inject(fact):
            out[slot_key] = Candidate(-1, score, FACTS_SESSION, key, fact.valid_from, fact)
    _said_into_turns(out, by_id)
    ranked = sorted(out.values(), key=lambda c: (-c.score, c.slot < 0, c.slot))
    return ranked


def _said_into_turns(out: dict[str, Candidate], by_id: Mapping[str, Fact]) -> None:
    """A said fact is a short key of the turn it came from: when that turn is a candidate it
    takes the fact's score (if higher) and the fact, which it holds verbatim, is left out."""
    for key, c in list(out.items()):
        fact = by_id.get(c.message_id) if c.session_id == FACTS_SESSION else None
        if fact is None or not fact.said:
            continue
        turn = out.get(f"{fact.session_id}\x1f{fact.message_id}")
        if turn is not None:
            if c.score > turn.score:
                out[f"{fact.session_id}\x1f{fact.message_id}"] = replace(turn, score=c.score)
            del out[key]


def timeline_hits(
    ranked: Sequence[tuple[int, float]],
    doc_of: Callable[[int], tuple[str, Mapping[str, Any]] | None],
    key_of: Callable[[int], tuple[str, str, float]],
    facts: Sequence[Fact],
    request: RecallQuery,
    user_id: str,
    weights: TimelineWeights | None = None,
    context: TimeContext | None = None,
) -> list[RecallHit]:
    """The top ``request.k`` hits of ``hybrid_rank``'s (slot, score) pairs, re-ranked by
    :func:`rerank`. ``key_of`` gives a slot's session, message id and time (read for every
    candidate); ``doc_of`` its text and metadata (read for the hits only). ``context``: the
    request's :func:`time_context`, if the caller made it already."""
    context = time_context(request) if context is None else context
    if context.window is None and context.as_of is None and not facts:
        hits = []
        for slot, score in ranked[: request.k]:
            doc = doc_of(slot)
            if doc is not None:
                hits.append(hit_from_metadata(doc[0], doc[1], float(score)))
        return annotate(hits, facts)  # fact documents left from when facts were on: dropped
    candidates = []
    for slot, score in ranked:
        session_id, message_id, created_ts = key_of(slot)
        when = datetime.fromtimestamp(created_ts, tz=timezone.utc)
        candidates.append(Candidate(slot, float(score), session_id, message_id, when))

    def allowed(fact: Fact) -> bool:
        when = fact.valid_from.timestamp()
        return (
            request.session_id is None
            and (request.since is None or when >= request.since)
            and (request.until is None or when <= request.until)
        )

    out = []
    for c in rerank(candidates, facts, context, request.text, weights, inject=allowed)[: request.k]:
        if c.fact is not None:
            out.append(
                RecallHit(
                    text=c.fact.text(), score=c.score, role=FACT_ROLE, session_id=FACTS_SESSION,
                    created_at=c.fact.valid_from, message_id=c.message_id, user_id=user_id,
                )
            )  # fmt: skip
        elif (doc := doc_of(c.slot)) is not None:
            out.append(hit_from_metadata(doc[0], doc[1], c.score))
    return annotate(out, facts)


def annotate(hits: Sequence[RecallHit], facts: Sequence[Fact]) -> list[RecallHit]:
    """Fact hits with the fact's current line and its ``valid_to`` (the fact table is the
    truth: a document written before the fact was superseded still says it)."""
    by_id = {fact_message_id(f.fact_id): f for f in facts}
    out = []
    for hit in hits:
        fact = by_id.get(hit.message_id) if hit.role == FACT_ROLE else None
        if hit.role == FACT_ROLE and fact is None:
            continue
        if fact is not None:  # said where its source message was said
            hit = replace(
                hit, text=fact.text(), role=FACT_ROLE, valid_to=fact.valid_to,
                session_id=fact.session_id, source_message_id=fact.message_id,
            )  # fmt: skip
        out.append(hit)
    return out


def _valid_at(fact: Fact, when: datetime) -> bool:
    return fact.valid_from <= when and (fact.valid_to is None or when < fact.valid_to)


def _overlaps(fact: Fact, window: TimeRange) -> bool:
    return fact.valid_from < window.end and (fact.valid_to is None or fact.valid_to > window.start)


def _interval_boost(fact: Fact, window: TimeRange) -> float:
    if _overlaps(fact, window):
        return 1.0
    nearest = fact.valid_from if fact.valid_from >= window.end else fact.valid_to
    return time_boost(nearest, window) if nearest is not None else 0.0


def _from_ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


# --- writing and erasing fact documents ------------------------------------------------------


class FactIndex:
    """The fact side of one user's Tier 3: the pass after compaction, the documents, erasure."""

    def __init__(
        self,
        book: FactBook,
        store: SessionStore,
        vectors: UserVectors,
        prepare: Callable[[Message, Message | None], Message],
        *,
        documents: bool = True,
    ) -> None:
        self.book = book
        self.store = store
        self.vectors = vectors
        self.prepare = prepare
        #: write the fact documents to Tier 3 (off for a memory that does not index Tier 3: its
        #: embedder may not be the one of the user's vectors; a memory of the user that indexes
        #: Tier 3 writes the missing ones after its next compaction, ``sync_steps``)
        self.documents = documents

    @property
    def user_id(self) -> str:
        return self.book.user_id

    def after_compaction_steps(self, session_id: str, upto: int) -> Steps[list[Fact]]:
        """Observe the session's newly summarized messages (once) and bring the fact
        documents up to date (also repairing what a crash between the two left behind)."""
        changed = yield Call(self.book.observe_upto, (session_id, upto, self.prepare))
        if self.documents:
            yield from self.sync_steps()
        return changed  # type: ignore[no-any-return]

    def sync_steps(self) -> Steps[int]:
        """Write the fact documents whose text differs from the fact table; returns how many."""
        facts: list[Fact] = yield Call(self.book.facts)
        if not facts:
            return 0
        keys = [(FACTS_SESSION, fact_message_id(f.fact_id)) for f in facts]
        stored: list[StoredDocument] = yield Call(self.store.documents, (self.user_id, keys))
        have = {d.message_id: d.text for d in stored}
        docs = [d for f in facts if have.get((d := fact_document(f)).message_id) != d.text]
        if not docs:
            return 0
        yield from self.vectors.write_steps(docs)
        doc_keys = [(d.session_id, d.message_id) for d in docs]
        yield Call(self.store.mark_indexed, (self.user_id, doc_keys, docs))
        return len(docs)

    def forget_steps(self, removed: Sequence[tuple[str, str]]) -> Steps[None]:
        """Erase the facts of removed messages, their documents and vectors."""
        erased = yield Call(self.book.forget_messages, (list(removed),))
        yield from self._erase_documents(erased)

    def forget_session_steps(self, session_id: str) -> Steps[None]:
        erased = yield Call(self.book.forget_session, (session_id,))
        yield from self._erase_documents(erased)

    def forget_user_steps(self) -> Steps[None]:
        """The user's facts and watermarks (the store and Tier 3 drop the documents)."""
        yield Call(self.book.forget_user)

    def _erase_documents(self, erased: Sequence[int]) -> Steps[None]:
        if not erased:
            return
        for fact_id in erased:
            yield Call(self.store.forget_message, (self.user_id, fact_message_id(fact_id)))
        keys = [record_key(FACTS_SESSION, fact_message_id(i)) for i in erased]
        yield from self.vectors.call_steps(self.vectors.long_term.delete, keys, compares=False)
        try:
            yield from self.sync_steps()  # a fact an erased one had closed holds again
        except TieredMemoryError as exc:  # the erasure is done: report it, not this
            logger.warning(
                "after an erasure, the fact documents of user %r were not brought up to date "
                "(the next compaction retries): %s", self.user_id, exc,
            )  # fmt: skip


__all__ = [
    "FACTS_SESSION",
    "FACT_ROLE",
    "Candidate",
    "FactIndex",
    "TimeContext",
    "TimelineWeights",
    "annotate",
    "fact_document",
    "fact_message_id",
    "holds",
    "rerank",
    "time_context",
    "timeline_hits",
]
