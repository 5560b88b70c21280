"""The prompt-caching model and the price arithmetic on hand-made prompt sequences."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from tiered_memory_bench.billing import (
    ANTHROPIC_HAIKU,
    OPENAI,
    PRICES,
    CacheRule,
    PromptBill,
    Sized,
    best_cache_share,
    bill_prompts,
    common_prefix,
    dollars,
    input_dollars,
    overflow_turns,
)


def tokens(n: int, start: int = 0) -> list[int]:
    return list(range(start, start + n))


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_an_unchanged_prefix_is_cached_in_128_token_steps() -> None:
    first = tokens(3000)
    second = first + tokens(50, start=10_000)  # append-only, like full history
    bill = bill_prompts([first, second], OPENAI)
    # shared 3000 tokens: 1024 + 15 x 128 = 2944 cached; the first call is never cached
    assert bill.cached_tokens == 2944
    assert bill.prompt_tokens == 6050
    assert bill.cache_hit_share == pytest.approx(2944 / 6050)


def test_a_prefix_changed_at_token_1000_is_not_cached() -> None:
    first = tokens(3000)
    second = [*first[:1000], -1, *first[1001:]]
    assert bill_prompts([first, second], OPENAI).cached_tokens == 0  # 1000 < 1024
    changed_later = [*first[:1500], -1, *first[1501:]]
    assert bill_prompts([first, changed_later], OPENAI).cached_tokens == 1408  # 1024 + 3 x 128


def test_a_prompt_under_the_minimum_is_never_cached() -> None:
    short = tokens(900)
    assert bill_prompts([short, short, short], OPENAI).cached_tokens == 0
    assert bill_prompts([tokens(5000), tokens(4000)], ANTHROPIC_HAIKU).cached_tokens == 0
    assert bill_prompts([tokens(5000), tokens(5000)], OPENAI, cache=False).cached_tokens == 0


def test_anthropic_bills_reads_and_writes() -> None:
    first = tokens(5000)
    second = first + tokens(1000, start=9000)
    bill = bill_prompts([first, second, tokens(100)], ANTHROPIC_HAIKU)
    assert bill.cached_tokens == 5000
    assert bill.written_tokens == 5000 + 1000  # the first prompt whole, then the new suffix
    assert bill.plain_tokens == 100  # under the minimum: plain input
    price = PRICES["claude-haiku-4.5"]
    expected = (5000 * 0.10 + 6000 * 1.25 + 100 * 1.00) / 1e6
    assert input_dollars(bill, price) == pytest.approx(expected)


def test_dollars_add_cached_chat_input_and_the_summarizer() -> None:
    chat = PromptBill(prompt_tokens=2_000_000, cached_tokens=1_000_000, calls=10)
    mini = PRICES["gpt-4o-mini"]
    # chat: 1M cached x 0.075 + 1M x 0.15; summarizer: 1M in x 0.15 + 0.5M out x 0.60
    assert dollars(chat, mini, 1_000_000, 500_000, mini) == pytest.approx(
        0.075 + 0.15 + 0.15 + 0.30
    )


def test_overflow_counts_calls_over_each_window() -> None:
    assert overflow_turns([100, 9000, 40_000, 130_000], [8000, 32000, 128000]) == {
        "8000": 3,
        "32000": 2,
        "128000": 1,
    }


def test_every_price_has_a_dated_source_and_a_status() -> None:
    from tiered_memory_bench.billing import PRICE_SOURCES, PRICES_AS_OF, SHEETS

    assert "2026" in PRICES_AS_OF
    for model in PRICES:
        status, source = PRICE_SOURCES[model]
        assert status in {"confirmed", "unverified"} and source
    assert all(chat in PRICES and summarizer in PRICES for chat, summarizer in SHEETS.values())


def test_cached_input_is_cheaper_than_input_and_writes_dearer() -> None:
    for price in PRICES.values():
        assert 0 < price.cached_input < price.input < price.output
        if price.cache_write is not None:
            assert price.cache_write == pytest.approx(1.25 * price.input)


def test_a_prefix_break_is_blamed_on_the_first_message_that_differs() -> None:
    from tiered_memory_bench.token_cost import break_cause

    summary = {"role": "system", "content": "summary v1"}
    chat = [{"role": "user", "content": f"m{i}"} for i in range(4)]
    ids = {"summary v1": (1,), "summary v2": (2,), **{f"m{i}": (10 + i,) for i in range(4)}}

    def tok(prompt: list[dict[str, str]]) -> list[tuple[int, ...]]:
        return [ids[m["content"]] for m in prompt]

    before = [summary, *chat[:3]]
    grown = [*before, chat[3]]
    resummarized = [{"role": "system", "content": "summary v2"}, *chat[2:]]
    slid = [summary, *chat[1:]]
    assert break_cause(tok(grown), tok(before), grown, before) is None
    assert break_cause(tok(resummarized), tok(before), resummarized, before) == "summary"
    assert break_cause(tok(slid), tok(before), slid, before) == "messages"
    assert break_cause(tok(chat[:1]), tok(chat[:2]), chat[:1], chat[:2]) == "messages"


def _toy_rule() -> CacheRule:
    return CacheRule("toy", min_tokens=30, step=10, writes_billed=False)


def _brute_force_share(sizes: list[int], summary: int, budget: int, rule: CacheRule) -> float:
    """Every cut schedule of a short log, enumerated: the best cache-hit share."""
    best = 0.0

    def walk(turn: int, start: int, shown: bool, last: int, cached: int, billed: int) -> None:
        nonlocal best
        if turn == len(sizes):
            best = max(best, cached / billed)
            return
        for new_start in range(start, turn + 1):
            cut = new_start != start
            with_summary = shown or cut
            length = sum(sizes[new_start : turn + 1]) + (summary if with_summary else 0)
            if length > budget and new_start < turn:
                continue
            hit = 0 if cut or turn == 0 else rule.cached_shared(last, length)
            walk(turn + 1, new_start, with_summary, length, cached + hit, billed + length)

    walk(0, 0, False, 0, 0, 0)
    return best


@pytest.mark.parametrize(
    "sizes",
    [[12, 9, 15, 20, 7, 11, 14, 9], [25, 5, 5, 30, 5, 5, 25, 5], [40, 3, 3, 3, 3, 40, 3]],
)
def test_the_layout_bound_is_the_best_of_every_cut_schedule(sizes: list[int]) -> None:
    rule = _toy_rule()
    bound = best_cache_share([[Sized(s, s) for s in sizes]], Sized(8, 8), 60, rule)
    assert bound == pytest.approx(_brute_force_share(sizes, 8, 60, rule), abs=1e-6)


def test_the_layout_bound_of_a_log_that_always_fits_is_append_only() -> None:
    sizes = [Sized(10, 10)] * 8
    prompts = [list(range(10 * (n + 1))) for n in range(8)]
    expected = bill_prompts(prompts, _toy_rule()).cache_hit_share
    assert best_cache_share([sizes], Sized(5, 5), 1000, _toy_rule()) == pytest.approx(expected)


def test_uncached_tokens_are_split_by_cause_and_add_up(tmp_path: Path) -> None:
    from tiered_memory_bench.chat_memories import Budgets, FullHistory
    from tiered_memory_bench.locomo import Conversation, Turn
    from tiered_memory_bench.token_cost import UNCACHED_CAUSES, replay

    class Sliding(FullHistory):
        """The last 12 messages after a fixed summary: the start moves every turn past 12."""

        name = "sliding"

        def prompt(self) -> list[dict[str, str]]:
            return [{"role": "system", "content": "notes"}, *self.messages[-12:]]

    when = datetime(2024, 1, 1)
    turns = [
        Turn("c", 1, i, f"D1:{i}", "a" if i % 2 else "b", f"turn {i} " + "word " * 150, when, bool(i % 2))
        for i in range(20)
    ]  # fmt: skip
    conversation = Conversation("c", "a", "b", {1: turns}, {1: when})
    run = replay(Sliding, conversation, Budgets(), tmp_path, "sliding")
    bill = run.bills["openai"]
    assert set(run.uncached) == set(UNCACHED_CAUSES)
    assert sum(run.uncached.values()) == bill.prompt_tokens - bill.cached_tokens
    assert run.uncached["prefix_break"] > 0  # turns 13-20 drop the oldest message
    assert run.uncached["below_minimum"] > 0  # the first prompts are short
    assert run.uncached["new_tokens"] > 0 and run.uncached["rounding"] > 0
    assert run.prefix_breaks["messages"] == 8
    assert run.summary_size is not None and len(run.message_sizes) == 20


def test_a_prompt_billed_in_fewer_tokens_than_its_ids_still_pays_its_new_tokens() -> None:
    from tiered_memory_bench.token_cost import billed_cached

    # 2,040 ids (2,000 shared with the last prompt), counted as 1,900 tokens by the core
    hit = OPENAI.cached_shared(2000, 2040)
    assert hit == 1920
    cached = billed_cached(OPENAI, 2000, 2040, 1900)
    assert 1900 - cached == 2040 - hit  # the 40 new ids + the 80 past the last 128-token step
    assert billed_cached(OPENAI, 2000, 2040, 2100) == hit  # never more than the rule allows
    assert billed_cached(OPENAI, 900, 2040, 1900) == 0  # shared prefix under the minimum
