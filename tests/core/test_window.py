from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tiered_memory import Message, ToolCall
from tiered_memory.state import StoredMessage
from tiered_memory.window import fit_view, plan_eviction, valid_cut_points


def user(text: str = "hello") -> Message:
    return Message(role="user", content=text)


def call(*ids: str) -> Message:
    return Message(role="assistant", content="", tool_calls=tuple(ToolCall(i, "f") for i in ids))


def result(call_id: str) -> Message:
    return Message(role="tool", content="ok", tool_call_id=call_id)


def sized(messages: list[Message], tokens: int = 10) -> list[StoredMessage]:
    return [StoredMessage(m, tokens, i) for i, m in enumerate(messages)]


def test_nothing_is_evicted_while_the_window_fits() -> None:
    assert plan_eviction(sized([user()] * 5), budget=50, low_watermark=25).evict_count == 0


def test_overflow_evicts_down_to_the_low_watermark() -> None:
    plan = plan_eviction(sized([user()] * 6), budget=50, low_watermark=25)
    assert plan.evict_count == 4  # 60 -> 20 tokens
    assert plan.evict_tokens == 40


def test_overflow_stops_just_above_the_watermark_when_that_is_nearer() -> None:
    sizes = [300, 500, 500, 400, 350]  # 2,050 tokens, watermark 800
    items = [StoredMessage(user(f"m{i}"), t, i) for i, t in enumerate(sizes)]
    plan = plan_eviction(items, budget=2000, low_watermark=800)
    assert plan.evict_count == 3  # 750 tokens left (50 under) beat 1,250 (450 above)
    sizes = [300, 500, 500, 600, 350]  # the next cut leaves 350, the one before 950: nearer
    items = [StoredMessage(user(f"m{i}"), t, i) for i, t in enumerate(sizes)]
    plan = plan_eviction(items, budget=2000, low_watermark=800)
    assert plan.evict_count == 3 and plan.evict_tokens == 1300


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=30), st.floats(0.1, 0.9))
def test_what_an_eviction_leaves_is_nearest_the_watermark_of_all_safe_cuts(
    sizes: list[int], ratio: float
) -> None:
    budget = 2000
    low = int(budget * ratio)
    items = [StoredMessage(user(f"m{i}"), t, i) for i, t in enumerate(sizes)]
    plan = plan_eviction(items, budget, low)
    total = sum(sizes)
    if total <= budget:
        assert plan.evict_count == 0
        return
    left = total - plan.evict_tokens
    assert left <= budget
    if plan.evict_count < len(items):  # the newest message always fits here: never evicted
        fitting = [sum(sizes[c:]) for c in range(1, len(items)) if sum(sizes[c:]) <= budget]
        assert abs(left - low) <= min(abs(r - low) for r in fitting)


def test_tool_call_and_its_results_move_together() -> None:
    messages = [user(), call("a", "b"), result("a"), result("b"), user()]
    assert valid_cut_points(messages) == [0, 1, 4, 5]


def test_cut_never_orphans_a_late_result() -> None:
    messages = [call("a"), user("interleaved"), result("a"), user()]
    assert 1 not in valid_cut_points(messages)
    assert 2 not in valid_cut_points(messages)


def test_a_message_larger_than_the_budget_is_evicted_whole() -> None:
    items = [StoredMessage(user(), 10, 0), StoredMessage(user("huge"), 500, 1)]
    plan = plan_eviction(items, budget=100, low_watermark=50)
    assert plan.evict_count == 2


def test_view_trims_oldest_units_only() -> None:
    items = sized([user(), call("a"), result("a"), user()])
    assert fit_view(items, 25) == 3


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    for index in range(draw(st.integers(1, 30))):
        if draw(st.booleans()):
            messages.append(user(f"u{index}"))
        else:
            ids = [f"c{index}_{j}" for j in range(draw(st.integers(1, 3)))]
            messages.append(call(*ids))
            messages.extend(result(i) for i in ids)
    return messages


@settings(max_examples=200, deadline=None)
@given(conversations(), st.integers(1, 400), st.floats(0.1, 0.9))
def test_window_never_starts_with_a_tool_result(
    messages: list[Message], budget: int, ratio: float
) -> None:
    items = [StoredMessage(m, 7 + (i % 5) * 9, i) for i, m in enumerate(messages)]
    plan = plan_eviction(items, budget, int(budget * ratio))
    kept = items[plan.evict_count :]
    assert not kept or kept[0].message.role != "tool"
    assert sum(i.tokens for i in kept) <= budget
    kept_calls = {c.id for i in kept for c in i.message.tool_calls}
    for item in kept:
        if item.message.role == "tool":
            assert item.message.tool_call_id in kept_calls


def test_the_newest_unit_stays_when_it_fits_the_budget() -> None:
    items = [
        StoredMessage(user(), 10, 0),
        StoredMessage(call("a"), 10, 1),
        StoredMessage(result("a"), 70, 2),
    ]
    plan = plan_eviction(items, budget=85, low_watermark=40)
    assert plan.evict_count == 1  # the call and its 70-token result stay together
