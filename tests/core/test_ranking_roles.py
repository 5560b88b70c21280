"""Recall ranking: an assistant's reply takes no share of its neighbours; a user's turn does."""

from __future__ import annotations

from tiered_memory.recall.lexical import IndexedDoc, LexicalIndex
from tiered_memory.recall.ranking import RankingWeights, hybrid_rank


def doc(key: str, session: str, seq: int, role: str) -> IndexedDoc:
    metadata = {"session_id": session, "seq": seq, "created_ts": float(seq), "role": role}
    return IndexedDoc(key, key, metadata)


def scores_of(
    docs: list[IndexedDoc], similarity: dict[str, float], weights: RankingWeights
) -> dict[str, float]:
    """Rank with dense similarities only (the query matches no word of any document)."""
    index = LexicalIndex()
    index.add(docs)
    dense = {index.slot_of(key): value for key, value in similarity.items()}
    ranked = hybrid_rank(dense, index.scores("omega"), index, index.mask(), weights)  # type: ignore[arg-type]
    return {index.docs[slot].key: float(score) for slot, score in ranked}  # type: ignore[union-attr]


def pairs() -> list[IndexedDoc]:
    """Two sessions alike but for who speaks second: a user's follow-up, an assistant's reply
    (built per test: no document outlives it)."""
    return [
        doc("question", "s1", 0, "user"),
        doc("reply", "s1", 1, "assistant"),
        doc("statement", "s2", 0, "user"),
        doc("follow-up", "s2", 1, "user"),
    ]


SIMILARITY = {"question": 0.9, "reply": 0.1, "statement": 0.9, "follow-up": 0.1}


def test_an_assistant_reply_is_not_lifted_by_the_user_turn_it_answers() -> None:
    scores = scores_of(pairs(), SIMILARITY, RankingWeights())
    assert scores["follow-up"] > scores["reply"]
    # the two matching user turns take the same share from their (equally weak) neighbours
    assert scores["question"] == scores["statement"]


def test_with_no_self_contained_role_the_reply_takes_the_share_as_any_turn() -> None:
    scores = scores_of(pairs(), SIMILARITY, RankingWeights(self_contained_roles=()))
    assert scores["reply"] == scores["follow-up"]


def test_a_user_turn_still_takes_its_share_from_the_answer_it_got() -> None:
    docs = [
        doc("asked", "s1", 0, "user"),
        doc("answer", "s1", 1, "assistant"),
        doc("alone", "s2", 0, "user"),
        doc("next", "s2", 1, "user"),
    ]
    similarity = {"asked": 0.1, "answer": 0.9, "alone": 0.1, "next": 0.1}
    scores = scores_of(docs, similarity, RankingWeights(session=0.0))
    ranked = sorted(scores, key=lambda key: -scores[key])
    assert ranked[0] == "answer"
    assert scores["asked"] > scores["alone"]
