"""Facts in Tier 3: extracted on compaction, recalled beside turns, current first, as_of, time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tiered_memory import ConfigError, HashEmbedder, MemoryConfig, TieredMemory
from tiered_memory.facts import Statement
from tiered_memory.messages import Message

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
MOVES = [("I live in Paris.", 0), ("I moved to Berlin.", 60), ("I moved to Madrid.", 120),
         ("I moved to Rome.", 200)]  # fmt: skip


def _memory(path: Path, session: str = "s1", user: str = "kha", **kwargs: object) -> TieredMemory:
    fields = {k: kwargs.pop(k) for k in list(kwargs) if k in MemoryConfig.__dataclass_fields__}
    config = MemoryConfig(
        window_tokens=64, summary_tokens=200, compaction="inline", index_batch=1,
        retry_backoff=0.0, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    return TieredMemory(session, user, path, config, embedder=HashEmbedder(), **kwargs)  # type: ignore[arg-type]


def _chat(mem: TieredMemory, turns: Sequence[tuple[str, int]] = MOVES) -> None:
    for text, day in turns:
        when = T0 + timedelta(days=day)
        mem.add("user", text, created_at=when)
        mem.add("assistant", "Thanks for telling me, I will remember it.", created_at=when)
    for n in range(6):  # push the moves out of the window, into the summary
        when = T0 + timedelta(days=230 + n)
        mem.add("user", f"Filler number {n} about the weather today.", created_at=when)
    mem.compact()


def _facts(hits: Sequence[object]) -> list[object]:
    return [h for h in hits if getattr(h, "role", "") == "fact"]


def test_compaction_extracts_the_facts_of_the_batch(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    assert mem.facts is not None
    facts = mem.facts.book.facts()
    assert [f.value for f in facts] == ["Paris", "Berlin", "Madrid", "Rome"]
    assert [f.current for f in facts] == [False, False, False, True]


def test_the_current_value_comes_first_and_says_so(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    hits = mem.recall("where do I live?", k=5, exclude_window=False)
    assert hits[0].role == "fact" and "Rome" in hits[0].text
    assert hits[0].is_fact and not hits[0].superseded and hits[0].valid_to is None
    assert hits[0].session_id == "s1" and hits[0].message_id.startswith("tm:fact:")
    source = [h for h in hits if h.text == "I moved to Rome."]
    assert hits[0].source_message_id is not None
    assert not source or source[0].message_id == hits[0].source_message_id


def test_a_superseded_fact_says_until_when_it_was_true(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    hits = mem.recall("When did I live in Paris?", k=5, exclude_window=False)
    paris = [h for h in _facts(hits) if "Paris" in h.text]  # type: ignore[attr-defined]
    assert paris, hits
    assert paris[0].superseded  # type: ignore[attr-defined]
    assert "was true until 2026-03-06" in paris[0].text  # type: ignore[attr-defined]


def test_current_facts_rank_above_superseded_ones(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    facts = _facts(mem.recall("where do I live?", k=10, exclude_window=False))
    assert facts and not facts[0].superseded  # type: ignore[attr-defined]
    assert all(f.superseded for f in facts[1:])  # type: ignore[attr-defined]


def test_as_of_gives_the_fact_valid_then_and_only_turns_said_before(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    june = T0 + timedelta(days=150)  # Madrid from day 120 to day 200
    hits = mem.recall("where do I live?", k=5, as_of=june, exclude_window=False)
    facts = _facts(hits)
    assert len(facts) == 1 and "Madrid" in facts[0].text  # type: ignore[attr-defined]
    assert hits[0] is facts[0]
    assert all(h.created_at <= june for h in hits)


def test_as_of_before_anything_was_said_finds_no_fact(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    assert _facts(mem.recall("where do I live?", as_of=T0 - timedelta(days=1))) == []


def test_a_date_in_the_query_lifts_the_fact_of_that_time(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    now = T0 + timedelta(days=240)  # 2026-09-01
    hits = mem.recall("Where did I live in April?", k=5, now=now, exclude_window=False)
    facts = _facts(hits)
    assert facts and "Berlin" in facts[0].text  # type: ignore[attr-defined]


def test_a_relative_date_lifts_turns_said_then(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    dishes = ["pasta", "curry", "tacos", "ramen", "risotto", "paella", "pho", "chili",
              "gnocchi", "falafel", "dumplings", "lasagna"]  # fmt: skip
    for n, dish in enumerate(dishes):
        when = T0 + timedelta(days=10 * n)
        mem.add("user", f"Tonight we cooked {dish} for dinner.", created_at=when)
        mem.add("assistant", f"Enjoy the {dish}!", created_at=when + timedelta(minutes=1))
    mem.flush()
    now = T0 + timedelta(days=115)  # two weeks ago: day ~101, the dumplings (day 100)
    # the newest turns may still be in the window: count them (exclude_window=False)
    dated = mem.recall(
        "what did we cook for dinner two weeks ago?", k=3, now=now, exclude_window=False
    )
    assert "dumplings" in dated[0].text
    february = mem.recall("what did we cook for dinner in February?", k=3, now=now)
    assert {h.created_at.month for h in february} == {2}
    # a soft boost, not a filter: every turn can still be found
    assert len(mem.recall("dinner two weeks ago", k=24, now=now, exclude_window=False)) == 24


def test_forget_message_erases_its_facts_and_the_previous_value_holds_again(
    tmp_path: Path,
) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    assert mem.facts is not None
    rome = next(f for f in mem.facts.book.facts() if f.value == "Rome")
    assert mem.forget(message_id=rome.message_id) == 1
    facts = mem.facts.book.facts()
    assert "Rome" not in [f.value for f in facts]
    assert [f.value for f in facts if f.current] == ["Madrid"]
    hits = mem.recall("where do I live? Rome", k=10, exclude_window=False)
    assert not any("Rome" in h.text for h in hits)
    assert "Madrid" in _facts(hits)[0].text  # type: ignore[attr-defined]


def test_forget_with_a_changed_embedder_erases_and_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The erasure comes first; re-writing the fact that holds again needs the recorded
    embedder, and failing that is logged (the next compaction retries), not raised."""
    _chat(_memory(tmp_path))
    other = HashEmbedder()
    other.name = "another-model-256"
    config = _memory(tmp_path, session="s2").config
    mem = TieredMemory("s2", "kha", tmp_path, config, embedder=other)  # the same user
    assert mem.facts is not None
    rome = next(f for f in mem.facts.book.facts() if f.value == "Rome")
    with caplog.at_level(logging.WARNING, "tiered_memory"):
        assert mem.forget(message_id=rome.message_id) == 1
    assert "Rome" not in [f.value for f in mem.facts.book.facts()]
    assert "were not brought up to date" in caplog.text


def test_forget_user_and_clear_erase_the_facts(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    other = _memory(tmp_path, session="s2")
    _chat(other, [("I work at Acme.", 300)])
    assert mem.facts is not None
    other.clear()
    assert "Acme" not in [f.value for f in mem.facts.book.facts()]
    assert mem.facts.book.facts()
    mem.forget(user_id="kha")
    assert mem.facts.book.facts() == []
    fresh = _memory(tmp_path, session="s3")
    assert fresh.recall("where do I live?", exclude_window=False) == []


def test_facts_are_per_user(tmp_path: Path) -> None:
    _chat(_memory(tmp_path))
    lan = _memory(tmp_path, user="lan")
    lan.add("user", "I like tea.")
    assert _facts(lan.recall("where do I live?", exclude_window=False)) == []


def test_facts_off(tmp_path: Path) -> None:
    mem = _memory(tmp_path, facts=False)
    _chat(mem)
    assert mem.facts is None
    assert _facts(mem.recall("where do I live?", k=10, exclude_window=False)) == []


def test_a_fact_extractor_with_facts_off_is_ambiguous(tmp_path: Path) -> None:
    class Nothing:
        def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
            return []

    with pytest.raises(ConfigError, match="facts"):
        _memory(tmp_path, facts=False, fact_extractor=Nothing())
    with pytest.raises(ConfigError, match="fact_extractor"):
        _memory(tmp_path, fact_extractor=object())


def test_a_custom_extractor_is_called_once_per_compacted_batch(tmp_path: Path) -> None:
    calls: list[int] = []

    class Counting:
        def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
            calls.append(len(messages))
            return [
                Statement("pet", "a cat", "set", m.created_at, session_id, m.id)
                for m in messages
                if "cat" in m.content
            ]

    mem = _memory(tmp_path, fact_extractor=Counting())
    for n in range(30):
        mem.add("user", f"Turn {n}: I have a cat." if n == 3 else f"Turn {n} of the chat.")
    mem.compact()
    assert calls and sum(calls) <= 30  # each message at most once, in whole batches
    assert mem.stats.summarizer_calls >= len(calls)
    assert [f.value for f in mem.facts.book.facts()] == ["a cat"]  # type: ignore[union-attr]


def test_a_session_filter_leaves_facts_out(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem)
    hits = mem.recall("where do I live?", k=10, session_id="s1", exclude_window=False)
    assert hits and _facts(hits) == []


def test_vaulted_values_in_facts_come_back_to_their_owner_only(tmp_path: Path) -> None:
    mem = _memory(tmp_path)
    _chat(mem, [("My wifi password is Tumbleweed-42", 10)])
    assert mem.facts is not None
    stored = mem.facts.book.facts()
    assert stored and all("Tumbleweed" not in f.value for f in stored)  # a placeholder
    hits = _facts(mem.recall("what is my wifi password?", k=5, exclude_window=False))
    assert hits and "Tumbleweed-42" in hits[0].text  # type: ignore[attr-defined]


def test_a_memory_that_does_not_index_tier3_writes_no_fact_documents(tmp_path: Path) -> None:
    """Its facts are extracted, but it writes no fact documents or vectors: a summary-only
    memory with another embedder must not create the user's vector collection (LlamaIndex's
    summary block beside a recall block on the same store failed CI on the dimension)."""
    mem = _memory(tmp_path, index_long_term=False)
    _chat(mem)
    assert mem.facts is not None and mem.facts.book.facts()
    assert mem.store.documents("kha") == []
    assert mem.long_term.count("kha") == 0
