from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiered_memory import (
    ConfigError,
    InvalidMessageError,
    MemoryConfig,
    SummaryRequest,
    TieredMemory,
)
from tiered_memory.tokens import token_counter

MemoryFactory = Callable[..., TieredMemory]

FACTS = [
    "My name is Kha.",
    "I am learning AI engineering.",
    "My stack is Python, FastAPI and ChromaDB.",
    "Sounds good, tell me more about embeddings.",
    "Embeddings map text to vectors so similar meanings are close together.",
    "How big should my chunks be?",
    "Around 200 to 500 tokens is a common starting point for chunks.",
    "My deadline is March 3rd.",
]


def chat(mem: TieredMemory, turns: int) -> None:
    for index in range(turns):
        role = "user" if index % 2 == 0 else "assistant"
        mem.add(role, FACTS[index % len(FACTS)] + f" (turn {index})")


def budget_limit(mem: TieredMemory) -> int:
    overhead = 3 + 20  # reply priming + the summary message's header
    return mem.config.window_tokens + mem.config.summary_tokens + overhead


def test_context_is_summary_then_window(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    chat(mem, 12)
    context = mem.context()
    assert context[0]["role"] == "system"
    assert context[0]["content"].startswith("Previous conversation summary:")
    assert "Kha" in context[0]["content"]
    assert context[-1]["content"].endswith("(turn 11)")


def test_compaction_is_amortized(make_memory: MemoryFactory) -> None:
    mem = make_memory(window_tokens=200)
    chat(mem, 30)
    assert 0 < mem.stats.summarizer_calls < 10


def test_each_message_goes_to_the_summarizer_exactly_once(
    make_memory: MemoryFactory, failing_summarizer: object
) -> None:
    failing_summarizer.healthy = True  # type: ignore[attr-defined]
    mem = make_memory(summarizer=failing_summarizer)
    chat(mem, 40)
    seen = failing_summarizer.seen  # type: ignore[attr-defined]
    assert len(seen) == len(set(seen))
    window_ids = {m.id for m in mem.window()}
    assert set(seen) | window_ids == {m.id for m in mem.history()}


def test_summary_is_recondensed_when_over_budget(make_memory: MemoryFactory) -> None:
    class Verbose:
        def summarize(self, request: SummaryRequest) -> str:
            if request.is_condense:
                return "condensed: Kha"
            return request.previous_summary + " word" * 40

        async def asummarize(self, request: SummaryRequest) -> str:
            return self.summarize(request)

    mem = make_memory(summarizer=Verbose(), summary_tokens=30)
    chat(mem, 20)
    assert mem.stats.summary_tokens <= 30


def test_failing_summarizer_loses_nothing_and_catches_up(
    make_memory: MemoryFactory, failing_summarizer: object
) -> None:
    mem = make_memory(summarizer=failing_summarizer)
    chat(mem, 20)
    assert len(mem.history()) == 20
    assert mem.pending(), "evicted messages wait for the summarizer"
    assert mem.stats.summarizer_failures >= 1
    counter = token_counter()
    assert counter.count_messages(mem.context_messages()) <= budget_limit(mem)
    failing_summarizer.healthy = True  # type: ignore[attr-defined]
    mem.compact()
    assert not mem.pending()
    assert "Kha" in mem.summary


def test_slow_summarizer_times_out_and_messages_stay_pending(make_memory: MemoryFactory) -> None:
    class Slow:
        def summarize(self, request: SummaryRequest) -> str:
            time.sleep(1.0)
            return "late"

        async def asummarize(self, request: SummaryRequest) -> str:
            await asyncio.sleep(1.0)
            return "late"

    mem = make_memory(summarizer=Slow(), summarizer_timeout=0.05)
    chat(mem, 10)
    assert mem.pending()
    assert mem.summary == ""


def test_reopened_memory_restores_the_same_context(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    mem = make_memory(path=tmp_path)
    chat(mem, 15)
    expected = mem.context()
    script = f"""
import json, os
os.environ.pop("OPENAI_API_KEY", None)
from tiered_memory import TieredMemory, MemoryConfig, HashEmbedder
mem = TieredMemory("s1", "kha", {str(tmp_path)!r}, {mem.config!r}, embedder=HashEmbedder())
print(json.dumps(mem.context()))
"""
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == expected


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("user", ""), {}),
        (("user", 12), {}),
        (("robot", "hi"), {}),
        (("tool", "42"), {}),
        (("user", None), {}),
    ],
)
def test_bad_input_raises_and_changes_nothing(
    make_memory: MemoryFactory, args: tuple, kwargs: dict
) -> None:
    mem = make_memory()
    mem.add("user", "My name is Kha.")
    before = (mem.history(), mem.context())
    with pytest.raises(InvalidMessageError):
        mem.add(*args, **kwargs)
    assert (mem.history(), mem.context()) == before


def test_a_bad_message_in_a_batch_stores_none_of_it(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    with pytest.raises(InvalidMessageError):
        mem.add_messages([{"role": "user", "content": "ok"}, {"role": "user", "content": ""}])
    assert mem.history() == []


@pytest.mark.parametrize("bad", ["", "   ", None, 5])
def test_empty_ids_are_rejected(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError):
        TieredMemory(bad, "kha", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TieredMemory("s1", bad, tmp_path)  # type: ignore[arg-type]


def test_a_message_larger_than_the_window_is_kept_in_history_and_summarized(
    make_memory: MemoryFactory,
) -> None:
    mem = make_memory()
    huge = "My name is Kha. " + "lorem ipsum " * 400
    mem.add("user", huge)
    assert mem.history()[0].content == huge
    assert token_counter().count_messages(mem.context_messages()) <= budget_limit(mem)
    assert "Kha" in mem.summary


def test_re_adding_a_known_id_is_a_no_op(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    mem.add("user", "hello there", id="m1")
    mem.add("user", "hello there", id="m1")
    assert [m.id for m in mem.history()] == ["m1"]


def test_recall_finds_an_earlier_session_of_the_same_user_only(make_memory: MemoryFactory) -> None:
    first = make_memory("s1", "kha")
    first.add("user", "My favourite database is ChromaDB.")
    other = make_memory("s9", "mallory")
    other.add("user", "My favourite database is Postgres.")
    second = make_memory("s2", "kha")
    hits = second.recall("favourite database", k=5)
    assert [h.text for h in hits] == ["My favourite database is ChromaDB."]
    assert hits[0].session_id == "s1" and hits[0].user_id == "kha"


def test_recall_excludes_messages_in_the_window(make_memory: MemoryFactory) -> None:
    mem = make_memory(window_tokens=2000)
    mem.add("user", "My favourite colour is blue.")
    assert mem.recall("favourite colour") == []
    assert mem.recall("favourite colour", exclude_window=False)


def test_recall_time_range(make_memory: MemoryFactory) -> None:
    mem = make_memory("s1")
    old = datetime(2023, 1, 1, tzinfo=timezone.utc)
    mem.add("user", "I visited Paris.", created_at=old)
    mem.add("user", "I visited Rome.", created_at=old + timedelta(days=60))
    other = make_memory("s2")
    hits = other.recall("visited", since=old + timedelta(days=30))
    assert [h.text for h in hits] == ["I visited Rome."]
    hits = other.recall("visited", since=old, until=old + timedelta(days=1))
    assert [h.text for h in hits] == ["I visited Paris."]


def test_recall_rejects_bad_queries(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    for bad in ("", "  "):
        with pytest.raises(InvalidMessageError):
            mem.recall(bad)
    with pytest.raises(InvalidMessageError):
        mem.recall("x", k=0)


def test_clear_removes_the_session_everywhere(make_memory: MemoryFactory) -> None:
    mem = make_memory("s1")
    chat(mem, 10)
    mem.clear()
    assert mem.history() == [] and mem.context() == [] and mem.summary == ""
    assert make_memory("s2").recall("Kha") == []


def test_indexing_failure_is_retried_later(make_memory: MemoryFactory) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.fail = True

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            if self.fail:
                raise RuntimeError("embedder down")
            return [[float(len(t)), 1.0] for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return [float(len(text)), 1.0]

    embedder = Flaky()
    mem = make_memory(embedder=embedder)
    mem.add("user", "remember me")
    embedder.fail = False
    assert mem.recall("remember me", exclude_window=False)


def test_stats_report_tokens_saved(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    chat(mem, 30)
    stats = mem.stats
    assert stats.messages == 30
    assert stats.history_tokens > stats.context_tokens
    assert stats.tokens_saved > 0


async def test_async_twins_match_sync(make_memory: MemoryFactory) -> None:
    mem = make_memory("a1")
    for index in range(12):
        await mem.aadd("user" if index % 2 == 0 else "assistant", FACTS[index % len(FACTS)])
    assert await mem.acontext() == mem.context()
    assert await mem.ahistory() == mem.history()
    other = make_memory("a2")
    hits = await other.arecall("name")
    assert hits
    await mem.aclear()
    assert await mem.ahistory() == []


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="window_tokens"):
        MemoryConfig(window_tokens=0)
    with pytest.raises(ConfigError, match="evict_to"):
        MemoryConfig(evict_to=1.5)


roles = st.sampled_from(["user", "assistant", "system"])
texts = st.text(min_size=1, max_size=300).filter(lambda t: t.strip())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(roles, texts), min_size=1, max_size=25), st.integers(40, 300))
def test_context_stays_in_budget_and_history_is_lossless(
    make_memory: MemoryFactory, turns: list[tuple[str, str]], window: int
) -> None:
    import uuid

    mem = make_memory(session_id=uuid.uuid4().hex, window_tokens=window, summary_tokens=60)
    added = [mem.add(role, text).id for role, text in turns]
    counter = token_counter()
    assert counter.count_messages(mem.context_messages()) <= window + 60 + 3
    assert [m.id for m in mem.history()] == added


def test_forget_message_removes_it_from_every_tier(make_memory: MemoryFactory) -> None:
    mem = make_memory("s1")
    secret = mem.add("user", "My favourite hiding place is the old oak tree.")
    chat(mem, 16)
    assert "oak tree" in mem.summary
    assert mem.forget(message_id=secret.id) == 1
    assert secret.id not in {m.id for m in mem.history()}
    assert "oak tree" not in mem.summary
    assert "Kha" in mem.summary  # the rest of the summary is re-derived
    hits = make_memory("s2").recall("hiding place oak tree", k=20)
    assert all(h.message_id != secret.id for h in hits)


def test_forget_user_erases_all_sessions_and_vectors(make_memory: MemoryFactory) -> None:
    first = make_memory("s1", "kha")
    chat(first, 6)
    other = make_memory("s1", "lan")
    chat(other, 4)
    assert first.forget(user_id="kha") == 6
    assert first.history() == [] and make_memory("s2", "kha").recall("Kha") == []
    assert len(other.history()) == 4


def test_forget_needs_exactly_one_target(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    with pytest.raises(InvalidMessageError):
        mem.forget()
    with pytest.raises(InvalidMessageError):
        mem.forget(user_id="someone-else")


def test_a_session_that_opts_out_of_tier3_is_never_indexed(make_memory: MemoryFactory) -> None:
    private = make_memory("private", index_long_term=False)
    private.add("user", "My secret code word is pelican.")
    other = make_memory("public")
    other.add("user", "hello")
    assert other.recall("secret code word pelican", k=10) == []
