"""The context layout keeps a cacheable prefix: only a compaction moves the prompt's start.

A provider's prompt cache serves the prefix a prompt shares with the previous one; these tests
replay the pure planners (``plan_eviction``, ``build_context``) turn by turn and check which
events change the start of what the model is sent.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiered_memory import MemoryConfig, Message
from tiered_memory.state import SessionState, StoredMessage
from tiered_memory.tokens import token_counter
from tiered_memory.window import build_context, max_pending_shown, plan_eviction

COUNTER = token_counter()
CONFIG = MemoryConfig(window_tokens=200, summary_tokens=120)


def stored(seq: int, words: int) -> StoredMessage:
    role = "user" if seq % 2 == 0 else "assistant"
    message = Message(role=role, content=f"message {seq}: " + "word " * words, id=f"m{seq}")
    return StoredMessage(message, COUNTER.count_message(message), seq)


def snapshot(
    pending: list[StoredMessage], window: list[StoredMessage], summary: str = ""
) -> SessionState:
    return SessionState(
        user_id="u",
        session_id="s",
        summary=summary,
        summary_tokens=COUNTER.count_text(summary),
        pending=tuple(pending),
        window=tuple(window),
    )


def ids(view: list[Message]) -> list[str | None]:
    return [m.id for m in view]


def is_prefix(before: list[Message], after: list[Message]) -> bool:
    return [(m.id, m.content) for m in before] == [(m.id, m.content) for m in after[: len(before)]]


def test_an_eviction_does_not_change_what_the_model_sees_while_pending_fits() -> None:
    low = int(CONFIG.window_tokens * CONFIG.evict_to)
    window: list[StoredMessage] = []
    before: list[Message] = []
    for seq in range(100):
        window.append(stored(seq, 14))
        plan = plan_eviction(window, CONFIG.window_tokens, low)
        if plan.evict_count:
            pending, window = window[: plan.evict_count], window[plan.evict_count :]
            break
        before = build_context(snapshot([], window, "notes"), CONFIG, COUNTER)
    after = build_context(snapshot(pending, window, "notes"), CONFIG, COUNTER)
    unused_summary_budget = CONFIG.summary_tokens - COUNTER.count_message(after[0])
    assert plan.evict_tokens > unused_summary_budget  # the old layout showed only that much
    assert is_prefix(before, after) and len(after) == len(before) + 1


def test_pending_that_does_not_fit_is_cut_once_and_the_cut_stays_until_compaction() -> None:
    log = [stored(i, 12) for i in range(30)]
    pending, window = log[:14], log[14:16]
    views = [
        build_context(snapshot(pending, window + log[16:n], "notes " * 40), CONFIG, COUNTER)
        for n in range(16, 22)
    ]
    shown_pending = [[i for i in ids(v) if i in {p.message.id for p in pending}] for v in views]
    assert shown_pending[0] and shown_pending[0] != [p.message.id for p in pending]
    assert all(s == shown_pending[0] for s in shown_pending)  # the newest that fit, every turn
    assert all(is_prefix(a, b) for a, b in itertools.pairwise(views))


def test_all_pending_is_shown_only_within_the_prompt_budget() -> None:
    log = [stored(i, 30) for i in range(12)]
    budget = CONFIG.window_tokens + CONFIG.summary_tokens
    fits = build_context(snapshot(log[:2], log[2:6], "notes"), CONFIG, COUNTER)
    too_many = build_context(snapshot(log[:8], log[8:12], "notes"), CONFIG, COUNTER)
    assert ids(fits)[1:] == [m.message.id for m in log[:6]]
    assert "m0" not in ids(too_many) and ids(too_many)[-4:] == [m.message.id for m in log[8:]]
    for view in (fits, too_many):
        assert sum(COUNTER.count_message(m) for m in view) <= budget


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), lag=st.integers(0, 3))
def test_between_two_compactions_the_prompt_start_moves_at_most_once(seed: int, lag: int) -> None:
    """Turn by turn: append, evict per plan_eviction, and (``lag`` turns after an eviction, as a
    background summarizer would) compact. A prompt that does not extend the previous one is a
    prefix break; only compactions, plus at most one cut per compaction cycle, may cause one."""
    rng = random.Random(seed)
    low = int(CONFIG.window_tokens * CONFIG.evict_to)
    window: list[StoredMessage] = []
    pending: list[StoredMessage] = []
    summary, compactions, due = "", 0, None
    previous: list[Message] | None = None
    breaks_since_compaction = 0
    for turn in range(120):
        window.append(stored(turn, rng.choice([2, 4, 8, 16, 30])))
        plan = plan_eviction(window, CONFIG.window_tokens, low)
        if plan.evict_count:
            pending += window[: plan.evict_count]
            window = window[plan.evict_count :]
            due = turn + lag if due is None else due
        compacted = due is not None and turn >= due
        if compacted:
            summary = f"summary after compaction {compactions}: " + "note " * rng.randint(5, 60)
            pending, due, compactions = [], None, compactions + 1
            breaks_since_compaction = 0
        view = build_context(snapshot(pending, window, summary), CONFIG, COUNTER)
        shown = sum(COUNTER.count_message(m) for m in view)
        budget = CONFIG.window_tokens + CONFIG.summary_tokens
        assert shown <= budget
        whole_tail = sum(COUNTER.count_message(m) for m in view[:1] if m.id == "summary:s") + sum(
            i.tokens for i in pending + window
        )
        if previous is not None and not compacted and not is_prefix(previous, view):
            assert whole_tail > budget, f"turn {turn}: the start moved though the tail fits"
            breaks_since_compaction += 1
            assert breaks_since_compaction <= 1, f"turn {turn}: the prompt start moved again"
        previous = view
    assert compactions > 0


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.sampled_from([2, 5, 10, 20, 40]), min_size=1, max_size=40),
    window=st.integers(0, 8),
    summary=st.sampled_from(["", "short notes", "long notes " * 50]),
    reserve=st.integers(0, 60),
)
def test_a_pending_tail_covering_max_pending_shown_builds_the_same_context(
    sizes: list[int], window: int, summary: str, reserve: int
) -> None:
    """The session loader may read only the newest pending messages covering
    ``max_pending_shown(config)`` tokens; the context must not depend on the rest."""
    if "pending_total" not in {f.name for f in dataclasses.fields(SessionState)}:
        pytest.skip("SessionState has no pending_total (tail loading not in this tree)")
    log = [stored(i, words) for i, words in enumerate(sizes)]
    cut = max(0, len(log) - window)
    pending, shown_window = log[:cut], log[cut:]
    full = snapshot(pending, shown_window, summary)
    need = max_pending_shown(CONFIG)
    start, covered = len(pending), 0
    while start > 0 and covered < need:
        start -= 1
        covered += pending[start].tokens
    tail = dataclasses.replace(
        full,
        pending=tuple(pending[start:]),
        pending_total=(len(pending), sum(p.tokens for p in pending)),  # type: ignore[call-arg]
    )
    assert ids(build_context(tail, CONFIG, COUNTER, reserve)) == ids(
        build_context(full, CONFIG, COUNTER, reserve)
    )
