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
    docs = [doc("mine", 0, None), doc("ben", 2, "Ben"), doc("assistant", 4, "")]
    about_ana = ranked_keys(docs, "Ana")
    assert about_ana[-1] == "ben"  # only the other named person's turn moves down
    plain = [key for key in ranked_keys(docs, "") if key != "ben"]
    assert [key for key in about_ana if key != "ben"] == plain


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
        # the same words about the other person put his turn first
        assert memory.recall("Did Ben ask about Pixel?", k=3, exclude_window=False)[0].name == "Ben"
    finally:
        memory.close()


def test_a_named_reply_of_another_author_is_penalized_too() -> None:
    reply = IndexedDoc(
        "bot", "bot", {"session_id": "t", "seq": 0, "created_ts": 0.0, "role": "assistant",
                       "name": "Helper"},
    )  # fmt: skip
    docs = [reply, doc("ana", 2, "Ana")]
    assert ranked_keys(docs, "Ana")[-1] == "bot"
