"""Summarizer outages: errors, timeouts, rate limits, a flaky model. add() never fails, nothing is
dropped, and once the model answers again every evicted message is summarized exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tm_reliability import (
    LedgerSummarizer,
    MemoryFactory,
    assert_consistent,
    ledger_ids,
    summary_ids,
)

from tiered_memory import SummaryRequest, TieredMemory
from tiered_memory.tokens import token_counter

TURNS = 30


class RateLimitError(Exception):
    """Shaped like the OpenAI / LangChain 429 error."""

    status_code = 429

    def __init__(self) -> None:
        super().__init__("Error code: 429 - Rate limit reached for gpt-4o-mini; retry after 20s")
        self.retry_after = 20.0


class Outage(LedgerSummarizer):
    """A LedgerSummarizer that raises ``error()`` while ``down``, or hangs until ``released``."""

    def __init__(self, ledger: Path, error: type[BaseException] | None = None) -> None:
        super().__init__(ledger)
        self.error = error
        self.down = True
        self.released = threading.Event()
        self.attempts = 0

    def summarize(self, request: SummaryRequest) -> str:
        if self.down:
            self.attempts += 1
            if self.error is None:  # a hung model: only the memory's timeout gets add() back
                self.released.wait(timeout=60)
                raise TimeoutError("the model never answered")
            raise self.error()
        return super().summarize(request)


def _chat(mem: TieredMemory, start: int, turns: int) -> list[str]:
    ids = []
    for n in range(start, start + turns):
        role = "user" if n % 2 == 0 else "assistant"
        ids.append(mem.add(role, f"Turn {n}: my project deadline is day {n} of March.").id)
    return ids


def _join_abandoned_attempts() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("tm-summarize-"):
            thread.join(timeout=30)
            assert not thread.is_alive(), "a released summarizer call never returned"


def _assert_everything_summarized_once(mem: TieredMemory, ledger: Path) -> None:
    ids = assert_consistent(mem)
    evicted = ids[: len(ids) - len(mem.window())]
    assert mem.pending() == []
    assert summary_ids(mem.summary) == evicted  # each evicted message once, in order
    sent = ledger_ids(ledger)
    assert sorted(sent) == sorted(evicted)  # and sent to a model that answered, once


def _assert_outage_kept_everything(mem: TieredMemory, added: list[str]) -> None:
    assert [m.id for m in mem.history()] == added
    assert mem.pending(), "evicted messages wait for the summarizer"
    assert mem.summary == ""
    assert mem.stats.summarizer_failures >= 1
    limit = mem.config.window_tokens + mem.config.summary_tokens + 3
    assert token_counter().count_messages(mem.context_messages()) <= limit


@pytest.mark.parametrize(
    "error", [ConnectionError, RateLimitError, RuntimeError], ids=["down", "rate-limit", "bug"]
)
def test_failing_summarizer_drops_nothing_and_catches_up_on_the_next_add(
    make_memory: MemoryFactory, ledger: Path, error: type[BaseException]
) -> None:
    model = Outage(ledger, error)
    mem = make_memory(summarizer=model, summary_tokens=5_000)
    added = _chat(mem, 0, TURNS)  # every add returned although each compaction failed
    _assert_outage_kept_everything(mem, added)
    assert model.attempts >= 1

    model.down = False
    added += _chat(mem, TURNS, 1)
    _assert_everything_summarized_once(mem, ledger)


def test_hung_summarizer_times_out_and_catches_up_after(
    make_memory: MemoryFactory, ledger: Path
) -> None:
    hung = Outage(ledger)
    mem = make_memory(summarizer=hung, summary_tokens=5_000, summarizer_timeout=0.05)
    try:
        added = _chat(mem, 0, TURNS // 3)
        _assert_outage_kept_everything(mem, added)
    finally:
        hung.released.set()  # the abandoned calls end (still failing); their answers never count
    _join_abandoned_attempts()  # while one is still alive the session gets no new attempt
    mem.summarizer = LedgerSummarizer(ledger)  # the model answers again
    added += _chat(mem, TURNS // 3, 1)
    _assert_everything_summarized_once(mem, ledger)


def test_compact_catches_up_after_an_outage_with_backoff(
    make_memory: MemoryFactory, ledger: Path
) -> None:
    model = Outage(ledger, ConnectionError)
    mem = make_memory(summarizer=model, summary_tokens=5_000, retry_backoff=300.0)
    added = _chat(mem, 0, TURNS)
    _assert_outage_kept_everything(mem, added)
    assert model.attempts == 1  # backing off: later adds did not hammer the model
    model.down = False
    mem.compact()  # the operator (or the next add after the backoff) retries
    _assert_everything_summarized_once(mem, ledger)


def test_flaky_summarizer_summarizes_every_message_exactly_once(
    make_memory: MemoryFactory, ledger: Path
) -> None:
    model = LedgerSummarizer(ledger, fail_every=2)
    mem = make_memory(summarizer=model, summary_tokens=5_000)
    _chat(mem, 0, 3 * TURNS)
    mem.compact()
    _assert_everything_summarized_once(mem, ledger)
    assert model.failures >= 5 and mem.stats.summarizer_failures == model.failures


def test_flaky_summarizer_succeeds_within_the_retries_of_one_add(
    make_memory: MemoryFactory, ledger: Path
) -> None:
    model = LedgerSummarizer(ledger, fail_every=2)
    mem = make_memory(summarizer=model, summary_tokens=5_000, summarizer_retries=1)
    _chat(mem, 0, 3 * TURNS)
    assert mem.stats.summarizer_failures == 0  # every failure was absorbed by its retry
    assert model.failures >= 5
    _assert_everything_summarized_once(mem, ledger)


async def test_async_add_survives_an_outage_and_catches_up(
    make_memory: MemoryFactory, ledger: Path
) -> None:
    model = Outage(ledger, RateLimitError)
    mem = make_memory(summarizer=model, summary_tokens=5_000)
    added = [
        (await mem.aadd("user", f"Async turn {n} about the March deadline.")).id
        for n in range(TURNS)
    ]
    _assert_outage_kept_everything(mem, added)
    model.down = False
    await mem.aadd("user", "The model is back.")
    _assert_everything_summarized_once(mem, ledger)
