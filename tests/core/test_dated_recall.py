"""A question that names a period also asks the vector store for that period's nearest
records, which join the dense pool: a turn said then is a candidate even when the rest of the
history crowds it out of the pool (LoCoMo's "What painting did Melanie show on October 13,
2023?")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory
from tiered_memory.recall import record_key
from tiered_memory.recall.ranking import RankingWeights

START = datetime(2023, 9, 1, 12, tzinfo=timezone.utc)
THE_DAY = datetime(2023, 10, 13, 15, tzinfo=timezone.utc)
TARGET = "You saw my painting of sunsets over a pink sky."
POOL = 4  # candidates per retriever, so that a few dozen turns crowd the target out


class Spy:
    """Records each vector-store query's filters and each ranking's dense pool."""

    def __init__(self, mem: TieredMemory) -> None:
        self.filters: list[list[dict[str, Any]]] = []
        self.pools: list[set[str]] = []
        nearest, rank = mem.long_term.nearest, mem.tier3.rank

        def spied_nearest(user_id: str, vector: Any, n: int, filters: Sequence[Any] = ()) -> Any:
            self.filters.append(list(filters))
            return nearest(user_id, vector, n, filters)

        def spied_rank(lexicon: Any, request: Any, pool: Any, *rest: Any) -> Any:
            self.pools.append({key for key, _ in pool})
            return rank(lexicon, request, pool, *rest)

        mem.long_term.nearest = spied_nearest  # type: ignore[method-assign]
        mem.tier3.rank = spied_rank  # type: ignore[method-assign]


@pytest.fixture
def mem(tmp_path: Path) -> TieredMemory:
    config = MemoryConfig(window_tokens=64, summary_tokens=100, compaction="inline", facts=False)
    mem = TieredMemory("s1", "kha", tmp_path, config, embedder=HashEmbedder())
    mem.tier3.weights = RankingWeights(pool=POOL)
    for n in range(60):  # a turn a day; no digits, so "13" or "2023" match nothing
        when = START + timedelta(days=n)
        text = TARGET if when.date() == THE_DAY.date() else "Did I show you my painting?"
        mem.add("user", text, id=f"m{n}", created_at=when)
    mem.flush()
    return mem


def _target_key(mem: TieredMemory) -> str:
    return record_key("s1", f"m{(THE_DAY - START).days}")


def test_a_named_day_brings_that_days_record_into_the_pool(mem: TieredMemory) -> None:
    """A period of few records is scored exactly from their vectors (Chroma's filtered search
    missed this very record on a server: it is approximate)."""
    spy = Spy(mem)
    mem.recall("What painting did I show you on October 13, 2023?", k=1, exclude_window=False)
    assert _target_key(mem) in spy.pools[-1]
    assert len(spy.filters) == 1  # no filtered query for a period this short


def test_a_long_period_is_a_filtered_query(mem: TieredMemory) -> None:
    spy = Spy(mem)
    mem.recall("What painting did I show you in September 2023?", k=1, exclude_window=False)
    start = datetime(2023, 9, 1, tzinfo=timezone.utc).timestamp()
    end = datetime(2023, 10, 1, tzinfo=timezone.utc).timestamp()
    assert [{"created_ts": {"$gte": start}}, {"created_ts": {"$lte": end}}] in spy.filters
    assert len(spy.pools[-1]) > POOL  # the month's nearest joined the pool


def test_without_a_date_the_crowd_keeps_the_target_out(mem: TieredMemory) -> None:
    """The control: the crowd does push the target out of the pool."""
    spy = Spy(mem)
    mem.recall("What painting did I show you?", k=1, exclude_window=False)
    assert len(spy.filters) == 1
    assert _target_key(mem) not in spy.pools[-1]


def test_the_period_keeps_the_callers_filters(mem: TieredMemory, tmp_path: Path) -> None:
    """A recall limited to a session never takes the period's records of another one: not
    from the exact scoring of a short period, not from the filtered query of a long one."""
    other = TieredMemory("s2", "kha", tmp_path, mem.config, embedder=HashEmbedder())
    other.add("user", "Did I show you my painting? In the other session.", created_at=THE_DAY)
    other.flush()
    elsewhere = record_key("s2", other.history()[-1].id)
    spy = Spy(mem)
    mem.recall("What painting did I show you on October 13, 2023?", k=1, session_id="s1")
    assert _target_key(mem) in spy.pools[-1] and elsewhere not in spy.pools[-1]
    mem.recall("What painting did I show you in October 2023?", k=1, session_id="s1")
    assert elsewhere not in spy.pools[-1]
    assert len(spy.filters) == 3 and all({"session_id": "s1"} in f for f in spy.filters)
