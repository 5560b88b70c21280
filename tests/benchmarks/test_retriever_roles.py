"""The tiered-memory retrieval system stores LongMemEval turns with their chat roles and LoCoMo's
two speakers as users (they are two people), and a fact hit counts as its source turn."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tiered_memory_bench.common import CachingEmbedder
from tiered_memory_bench.locomo import Conversation, Turn
from tiered_memory_bench.retrievers import TieredMemoryRetriever

from tiered_memory import HashEmbedder

WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def turn(index: int, speaker: str, text: str, *, named: bool, first: bool) -> Turn:
    return Turn(
        sample_id="q1", session=1, index=index, dia_id=f"D1:{index + 1}", speaker=speaker,
        text=text, created_at=WHEN, is_speaker_a=first, named=named,
    )  # fmt: skip


def test_roles_follow_the_dataset() -> None:
    assert TieredMemoryRetriever.role(turn(0, "user", "hi", named=False, first=True)) == "user"
    reply = turn(1, "assistant", "hello", named=False, first=False)
    assert TieredMemoryRetriever.role(reply) == "assistant"
    # LoCoMo: speaker_b is a person, not an assistant
    assert TieredMemoryRetriever.role(turn(1, "Ben", "hey", named=True, first=False)) == "user"


def test_a_longmemeval_haystack_is_stored_with_its_roles(tmp_path: Path) -> None:
    turns = [
        turn(0, "user", "I bought a red bicycle yesterday.", named=False, first=True),
        turn(1, "assistant", "Great choice, red bicycles are fun.", named=False, first=False),
    ]
    conversation = Conversation("q1", "user", "assistant", {1: turns}, {1: WHEN})
    retriever = TieredMemoryRetriever(tmp_path, CachingEmbedder(HashEmbedder(), "hash"))
    try:
        retriever.index(conversation)
        roles = {m.id: m.role for m in retriever.memory.history()}
        assert roles == {"q1:D1:1": "user", "q1:D1:2": "assistant"}
        ranked = retriever.search("red bicycle", 5)
        assert set(ranked) <= {"D1:1", "D1:2"} and len(ranked) == len(set(ranked))
    finally:
        retriever.close()


def test_skip_conversations_takes_the_next_split(tmp_path: Path) -> None:
    import argparse
    import json

    from tiered_memory_bench.cli import _load

    session = [{"role": "user", "content": "I play chess.", "has_answer": True}]
    items = [
        {
            "question_id": f"q{n}",
            "question_type": "single-session-user",
            "question": "What do I play?",
            "question_date": "2023/05/30 (Tue) 10:00",
            "answer": "chess",
            "answer_session_ids": ["s"],
            "haystack_session_ids": ["s"],
            "haystack_dates": ["2023/05/01 (Mon) 09:30"],
            "haystack_sessions": [session],
        }
        for n in range(5)
    ]
    path = tmp_path / "lme.json"
    path.write_text(json.dumps(items), encoding="utf-8")

    def ids(**options: int | None) -> list[str]:
        args = argparse.Namespace(data=str(path), question_types=None, **options)
        return [c.sample_id for c in _load(args)]

    assert ids(limit_conversations=2, skip_conversations=None) == ["q0", "q1"]
    assert ids(limit_conversations=2, skip_conversations=2) == ["q2", "q3"]
    assert ids(limit_conversations=None, skip_conversations=3) == ["q3", "q4"]
