"""Recall ranking: a question about one named person prefers that person's own turns."""

from __future__ import annotations

from pathlib import Path

from tiered_memory import HashEmbedder, Message, TieredMemory
from tiered_memory.recall.lexical import IndexedDoc, LexicalIndex
from tiered_memory.recall.ranking import RankingWeights, addressed_author, hybrid_rank


def test_the_addressed_author_is_the_one_person_the_question_names() -> None:
    names = ["Caroline", "Melanie", ""]
    assert addressed_author("What did Caroline research?", names) == "Caroline"
    assert addressed_author("what is melanie's favourite book?", names) == "Melanie"
    assert addressed_author("Did Caroline and Melanie meet?", names) == ""  # about both
    assert addressed_author("What did I say about painting?", names) == ""
    assert addressed_author("Where does Carolines live?", names) == ""  # a word, not a prefix
    assert addressed_author("When did Ana move?", ["Ana Lopez", "Ben"]) == "Ana Lopez"
    assert addressed_author("Anything about Ana?", []) == ""


def ranked_keys(docs: list[IndexedDoc], addressed: str) -> list[str]:
    index = LexicalIndex()
    index.add(docs)
    dense = {index.slot_of(d.key): 0.5 for d in docs}  # every turn matches alike
    ranked = hybrid_rank(
        dense,  # type: ignore[arg-type]
        index.scores("omega"),
        index,  # type: ignore[arg-type]
        index.mask(),
        RankingWeights(),
        addressed,
    )
    return [index.docs[slot].key for slot, _ in ranked]  # type: ignore[union-attr]


def doc(key: str, seq: int, name: str | None) -> IndexedDoc:
    metadata = {"session_id": "s", "seq": seq, "created_ts": float(seq), "role": "user"}
    if name is not None:
        metadata["name"] = name
    return IndexedDoc(key, key, metadata)


def test_turns_of_someone_else_rank_below_the_named_persons_own() -> None:
    docs = [doc("ben-1", 0, "Ben"), doc("ana-1", 2, "Ana"), doc("ben-2", 4, "Ben")]
    assert ranked_keys(docs, "Ana")[0] == "ana-1"
    assert ranked_keys(docs, "")[0] == "ben-1"  # no one named: the tie breaks by slot


def test_unnamed_messages_are_never_penalized() -> None:
    docs = [doc("mine", 0, None), doc("ana", 2, "Ana"), doc("assistant", 4, "")]
    first_two = ranked_keys(docs, "Ana")[:3]
    assert set(first_two) == {"mine", "ana", "assistant"}
    assert ranked_keys(docs, "Ana") == ranked_keys(docs, "")


def test_recall_in_a_group_chat_prefers_the_person_asked_about(tmp_path: Path) -> None:
    memory = TieredMemory(
        session_id="group", user_id="club", path=str(tmp_path), embedder=HashEmbedder()
    )
    try:
        memory.add_messages(
            [
                Message(role="user", name="Ben", content="Ana, is your cat Pixel still grey?"),
                Message(role="user", name="Ana", content="Yes, Pixel is a grey cat, two now."),
                Message(role="user", name="Ben", content="Pixel the grey cat is famous here."),
            ]
        )
        memory.flush()
        hits = memory.recall("What colour is Ana's cat Pixel?", k=3, exclude_window=False)
        assert hits[0].name == "Ana"
        # the same question about no one named keeps its plain ranking
        assert {h.name for h in memory.recall("grey cat Pixel", k=3, exclude_window=False)} == {
            "Ana",
            "Ben",
        }
    finally:
        memory.close()
