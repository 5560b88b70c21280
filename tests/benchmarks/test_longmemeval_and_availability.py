"""LongMemEval loading, format detection, session recall, the embedding cache and the
``answer-availability`` command, on tiny files the tests write (never the real datasets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiered_memory_bench.cli import main
from tiered_memory_bench.datasets import DataError, load_conversations
from tiered_memory_bench.embedding_cache import DiskCachedEmbedder
from tiered_memory_bench.locomo import scored_questions
from tiered_memory_bench.longmemeval import load_longmemeval, stratified
from tiered_memory_bench.retrieval import session_recall_any

from tiered_memory import HashEmbedder

LOCOMO_SESSIONS = [
    (
        "1:56 pm on 8 May, 2023",
        [
            ("Ana", "Hi Ben! I adopted a grey cat called Pixel last weekend."),
            ("Ben", "Congrats! I started training for the Lisbon marathon in October."),
            ("Ana", "My sister Clara is moving to Berlin next month for a design job."),
        ],
    ),
    (
        "10:15 am on 20 May, 2023",
        [
            ("Ben", "I ran 25 kilometers on Sunday, my longest run so far."),
            ("Ana", "I signed up for a pottery class on Thursday evenings."),
        ],
    ),
    (
        "7:31 pm on 2 June, 2023",
        [
            ("Ana", "Clara found an apartment in Kreuzberg near the canal."),
            ("Ben", "My knee hurts after the long run, I saw a physio."),
        ],
    ),
]
LOCOMO_QA = [
    ("What is the name of Ana's cat?", "Pixel", ["D1:1"], 4),
    ("How far did Ben run on Sunday?", "twenty-five kilometers", ["D2:1"], 2),
    ("Where does Clara live now?", "Berlin, Kreuzberg", ["D1:3", "D3:1"], 1),
    ("Would Ana enjoy crafts?", "Yes", ["D2:2"], 3),
    ("Which marathon?", "Lisbon", ["D1:2"], 5),  # adversarial: not scored
]


def synthetic_locomo() -> list[dict[str, Any]]:
    conversation: dict[str, Any] = {"speaker_a": "Ana", "speaker_b": "Ben"}
    for number, (date, turns) in enumerate(LOCOMO_SESSIONS, start=1):
        conversation[f"session_{number}_date_time"] = date
        conversation[f"session_{number}"] = [
            {"speaker": speaker, "dia_id": f"D{number}:{i}", "text": text}
            for i, (speaker, text) in enumerate(turns, start=1)
        ]
    qa = [{"question": q, "answer": a, "evidence": e, "category": c} for q, a, e, c in LOCOMO_QA]
    return [{"sample_id": "syn-1", "conversation": conversation, "qa": qa}]


FILLER = [
    ("user", "Can you suggest a good book about the history of Rome?"),
    ("assistant", "Try SPQR by Mary Beard; it covers a thousand years of Roman history."),
]


def lme_item(
    question_id: str, question_type: str, answer: Any, evidence_date: str
) -> dict[str, Any]:
    sessions = [
        # listed out of date order: the loader sorts by date
        ("s-late", "2023/05/25 (Thu) 18:00", FILLER),
        (
            "answer_1",
            evidence_date,
            [
                ("user", "I just started a pottery class at Clay Corner on Thursdays."),
                ("assistant", "That sounds relaxing! Pottery is a great hobby."),
                ("user", "My instructor says I should practice three times a week."),
            ],
        ),
        ("s-early", "2023/05/01 (Mon) 09:30", FILLER),
    ]
    return {
        "question_id": question_id,
        "question_type": question_type,
        "question": "Where do I take my pottery class?",
        "question_date": "2023/05/30 (Tue) 10:00",
        "answer": answer,
        "answer_session_ids": ["answer_1"],
        "haystack_session_ids": [s[0] for s in sessions],
        "haystack_dates": [s[1] for s in sessions],
        "haystack_sessions": [
            [
                {"role": role, "content": text, **({"has_answer": True} if "Clay" in text else {})}
                for role, text in turns
            ]
            for _, _, turns in sessions
        ],
    }


@pytest.fixture
def lme_data(tmp_path: Path) -> Path:
    items = [
        lme_item("q1", "single-session-user", "Clay Corner", "2023/05/10 (Wed) 12:00"),
        lme_item(
            "q2_abs", "single-session-user", "You did not mention it", "2023/05/10 (Wed) 12:00"
        ),
        lme_item("q3", "multi-session", 3, "2023/05/20 (Sat) 08:15"),
    ]
    path = tmp_path / "lme.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


@pytest.fixture
def locomo_data(tmp_path: Path) -> Path:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(synthetic_locomo()), encoding="utf-8")
    return path


# --- loaders ---------------------------------------------------------------------------------


def test_longmemeval_sessions_are_sorted_by_date_and_evidence_kept(lme_data: Path) -> None:
    conversation = load_longmemeval(lme_data)[0]
    assert conversation.dataset == "longmemeval"
    assert conversation.session_ids == {1: "s-early", 2: "answer_1", 3: "s-late"}
    turns = conversation.turns
    assert [t.index for t in turns] == list(range(7))
    assert turns[2].dia_id == "D2:1" and turns[2].chat_role == "user"
    assert turns[2].document == turns[2].text  # a role is not a name: no speaker prefix
    assert turns[2].created_at.isoformat() == "2023-05-10T12:00:00+00:00"
    [question] = conversation.questions
    assert question.evidence == ("D2:1",)
    assert question.evidence_sessions == (2,)
    assert question.category_name == "single-session-user" and question.category == 1
    assert question.asked_at is not None and question.asked_at.day == 30
    assert not question.abstention


def test_longmemeval_abstention_questions_are_not_scored(lme_data: Path) -> None:
    conversations = load_longmemeval(lme_data)
    assert [c.questions[0].abstention for c in conversations] == [False, True, False]
    assert [len(scored_questions(c)) for c in conversations] == [1, 0, 1]
    assert conversations[2].questions[0].answer == "3"  # integer answers become text


def test_limit_takes_scorable_questions_round_robin_over_types(lme_data: Path) -> None:
    items = json.loads(lme_data.read_text(encoding="utf-8"))
    assert [i["question_id"] for i in stratified(items, 2)] == ["q1", "q3"]
    assert [i["question_id"] for i in stratified(items, 5)] == ["q1", "q3"]
    assert len(stratified(items, None)) == 3
    assert [c.sample_id for c in load_conversations(lme_data, 1)] == ["q1"]


def test_format_is_detected_from_the_content(
    lme_data: Path, locomo_data: Path, tmp_path: Path
) -> None:
    assert load_conversations(lme_data)[0].dataset == "longmemeval"
    assert load_conversations(locomo_data)[0].dataset == "locomo"
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"foo": 1}]), encoding="utf-8")
    with pytest.raises(DataError, match="neither LoCoMo"):
        load_conversations(other)
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(DataError, match="malformed"):
        load_conversations(broken)


def test_session_recall_any_ranks_distinct_sessions() -> None:
    ranked = ["D3:1", "D3:2", "D1:4", "D7:1"]
    assert session_recall_any(ranked, [1], 2) == 1.0  # sessions 3, 1
    assert session_recall_any(ranked, [7], 2) == 0.0
    assert session_recall_any(ranked, [7], 5) == 1.0
    with pytest.raises(ValueError):
        session_recall_any(ranked, [1], 0)


# --- the embedding cache ---------------------------------------------------------------------


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(dimensions=16)
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super().embed_documents(texts)


def test_disk_cache_embeds_each_text_once_across_instances(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    first = DiskCachedEmbedder(inner, tmp_path / "cache" / "e.sqlite", model="m1")
    vectors = first.embed_documents(["a", "b", "a"])
    assert inner.embedded == ["a", "b"]
    first.close()
    second = DiskCachedEmbedder(inner, tmp_path / "cache" / "e.sqlite", model="m1")
    assert second.embed_documents(["b", "a"]) == [vectors[1], vectors[0]]
    assert inner.embedded == ["a", "b"]  # read from disk
    assert second.hits == 2 and len(second) == 2
    other_model = DiskCachedEmbedder(inner, tmp_path / "cache" / "e.sqlite", model="m2")
    other_model.embed_documents(["a"])
    assert inner.embedded == ["a", "b", "a"]  # another model never reads m1's vectors
    assert second.embed_query("a") == HashEmbedder(dimensions=16).embed_query("a")


# --- answer-availability ---------------------------------------------------------------------

OFFLINE_SYSTEMS = "full-history,tiered-memory,seed-policy,langchain-summarization,langchain-trim,llamaindex-vector-memory"


def availability(data: Path, out: Path, *extra: str) -> dict[str, Any]:
    argv = ["answer-availability", "--data", str(data), "--json", str(out), "--embedder", "hash"]
    assert main([*argv, "--systems", OFFLINE_SYSTEMS, *extra]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_answer_availability_json_shape_on_locomo(locomo_data: Path, tmp_path: Path) -> None:
    result = availability(
        locomo_data, tmp_path / "av.json", "--window-tokens", "60", "--summary-tokens", "40"
    )
    assert result["format"] == "locomo" and result["questions"] == 4
    assert set(result["systems"]) == set(OFFLINE_SYSTEMS.split(","))
    for row in result["systems"].values():
        assert {
            "answer_hit",
            "answer_hit_vs_full",
            "evidence_coverage",
            "mean_prompt_tokens",
        } <= set(row)
        assert 0.0 <= row["answer_hit"] <= 1.0
    full = result["systems"]["full-history"]
    assert full["evidence_coverage"] == 1.0  # every turn is in the prompt
    assert full["answer_hit_vs_full"] == 1.0
    tiered = result["systems"]["tiered-memory"]
    assert tiered["prompt_reduction_vs_full"] == pytest.approx(
        full["mean_prompt_tokens"] / tiered["mean_prompt_tokens"], abs=0.01
    )
    assert "lost_evidence" in tiered and "goals" in result
    rows = result["per_question"]["tiered-memory"]
    assert len(rows) == 4 and all("lost_evidence" in r for r in rows)
    by_id = {r["question_index"]: r for r in result["per_question"]["full-history"]}
    assert by_id[1]["answer_hit"]  # "twenty-five kilometers" matches "25 kilometers"
    assert set(result["by_category"]["full-history"]) == {"1", "2", "3", "4"}
    assert (tmp_path / "av.png").is_file()
    assert "Pixel" not in (tmp_path / "av.json").read_text(encoding="utf-8")  # ids only


def test_tiered_memory_finds_an_earlier_session_through_recall(
    lme_data: Path, tmp_path: Path
) -> None:
    result = availability(
        lme_data, tmp_path / "av.json", "--window-tokens", "50", "--summary-tokens", "30"
    )
    assert result["format"] == "longmemeval" and result["questions"] == 2
    q1 = {r["sample_id"]: r for r in result["per_question"]["tiered-memory"]}["q1"]
    # the evidence session is not the last one: only recall can bring it back
    assert q1["evidence_where"] == ["recall"] and q1["answer_hit"]
    trim = {r["sample_id"]: r for r in result["per_question"]["langchain-trim"]}["q1"]
    assert trim["evidence_where"] == ["missing"]


def test_a_peer_that_is_not_installed_or_unknown_is_listed_as_skipped(
    lme_data: Path, tmp_path: Path
) -> None:
    argv = ["answer-availability", "--data", str(lme_data), "--json", str(tmp_path / "a.json")]
    assert main([*argv, "--embedder", "hash", "--systems", "full-history,nope", "--no-plot"]) == 0
    result = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert "nope" in result["skipped"] and "full-history" in result["systems"]


def test_retrieval_on_longmemeval_reports_session_recall(lme_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["retrieval", "--data", str(lme_data), "--json", str(out), "--embedder", "hash"]
    assert main([*argv, "--systems", "tiered-memory,bm25", "--no-plot"]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    for row in result["systems"].values():
        assert row["session_recall_any@5"] == 1.0  # three sessions only: always in the top 5
        assert "session_recall_any@10" in row and "recall@5" in row
