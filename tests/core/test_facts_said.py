"""Said facts in recall ranking (recall/timeline.py): a dated sentence is a key of its turn."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tiered_memory.facts import SAID_PREFIX, Fact
from tiered_memory.recall.temporal import query_time_range
from tiered_memory.recall.timeline import (
    FACTS_SESSION,
    Candidate,
    TimeContext,
    fact_message_id,
    rerank,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=60)


def _said(fact_id: int, message_id: str, day: int, text: str, topic: str = "bike buy") -> Fact:
    when = T0 + timedelta(days=day)
    return Fact(
        SAID_PREFIX + topic, f"User said: {text}", when, None, when, "s1", message_id, fact_id
    )


def _turn(slot: int, message_id: str, score: float, day: int = 0) -> Candidate:
    return Candidate(slot, score, "s1", message_id, T0 + timedelta(days=day))


def _fact(slot: int, fact: Fact, score: float) -> Candidate:
    return Candidate(slot, score, FACTS_SESSION, fact_message_id(fact.fact_id), fact.valid_from)


def test_a_said_fact_lifts_its_turn_and_is_not_returned_beside_it() -> None:
    bike = _said(0, "m2", 3, "I just bought a road bike.")
    ranked = rerank(
        [_turn(0, "m1", 1.0), _turn(1, "m2", 0.2, day=3), _fact(2, bike, 1.5)],
        [bike],
        TimeContext(NOW, None, None),
    )
    assert [(c.message_id, c.score) for c in ranked] == [("m2", 1.5), ("m1", 1.0)]


def test_a_turn_scoring_above_its_said_fact_keeps_its_score() -> None:
    bike = _said(0, "m2", 3, "I just bought a road bike.")
    ranked = rerank(
        [_turn(0, "m2", 2.0, day=3), _fact(1, bike, 0.5)], [bike], TimeContext(NOW, None, None)
    )
    assert [(c.message_id, c.score) for c in ranked] == [("m2", 2.0)]


def test_a_said_fact_whose_turn_was_not_found_is_returned_itself() -> None:
    bike = _said(0, "m2", 3, "I just bought a road bike.")
    ranked = rerank(
        [_turn(0, "m1", 1.0), _fact(1, bike, 1.5)], [bike], TimeContext(NOW, None, None)
    )
    assert [c.message_id for c in ranked] == [fact_message_id(0), "m1"]


def test_a_turn_never_drags_its_said_facts_in_below_it() -> None:
    bike = _said(0, "m1", 0, "I just bought a road bike.")
    ranked = rerank([_turn(0, "m1", 1.0)], [bike], TimeContext(NOW, None, None))
    assert [c.message_id for c in ranked] == ["m1"]


def test_a_date_range_lifts_a_said_fact_of_then_and_never_makes_one_stale() -> None:
    early = _said(0, "m1", 0, "I just bought a road bike.", "bike road")
    late = _said(1, "m2", 40, "I just bought a rowing machine.", "machine rowing")
    window = query_time_range("what did I buy in early March?", NOW)
    assert window is not None
    ranked = rerank(
        [_fact(0, early, 1.0), _fact(1, late, 1.0)],
        [early, late],
        TimeContext(NOW, None, window),
    )
    assert [c.message_id for c in ranked] == [fact_message_id(0), fact_message_id(1)]
    assert 1.0 <= ranked[1].score < 1.01  # said long after the range: no stale penalty


def test_a_superseded_said_fact_hands_its_turn_score_to_the_newer_statement() -> None:
    old = _said(0, "m1", 0, "I've used my kayak four times.", "kayak use")
    new = _said(1, "m2", 30, "I've used my kayak six times.", "kayak use")
    old = Fact(old.attribute, old.value, old.valid_from, new.valid_from, old.recorded_at,
               old.session_id, old.message_id, old.fact_id)  # fmt: skip
    ranked = rerank(
        [_turn(0, "m1", 2.0), _turn(1, "m2", 0.1, day=30), _turn(2, "m3", 1.0, day=31)],
        [old, new],
        TimeContext(NOW, None, None),
    )
    assert [c.message_id for c in ranked][:2] == ["m2", "m1"]  # the new statement first
