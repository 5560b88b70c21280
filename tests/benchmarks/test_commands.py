"""Each benchmark command on a tiny slice: it runs, and its JSON has the documented shape.

The data is a small hand-written conversation in LoCoMo's format (the real dataset is CC BY-NC
and never copied here); one slow test also reads a slice of the real file when it is present.
Benchmarks are commands, not timed tests: no timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from tiered_memory_bench.cli import main
from tiered_memory_bench.locomo import load_locomo, normalize_evidence, scored_questions

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared/data/locomo/locomo-dev.json"

SESSIONS = {
    1: (
        "1:56 pm on 8 May, 2023",
        [
            ("Ana", "Hi Ben! I adopted a grey cat called Pixel last weekend."),
            ("Ben", "Congrats! I started training for the Lisbon marathon in October."),
            ("Ana", "I work as a nurse at the children's hospital, night shifts mostly."),
            ("Ben", "Night shifts sound hard. I teach chemistry at a high school."),
            ("Ana", "My sister Clara is moving to Berlin next month for a design job."),
            ("Ben", "Berlin is great. My brother lived there for two years."),
        ],
    ),
    2: (
        "10:15 am on 20 May, 2023",
        [
            ("Ben", "I ran 25 kilometers on Sunday, my longest run so far."),
            ("Ana", "Impressive! Pixel knocked over my orchid this morning."),
            ("Ben", "Ha, cats. I bought new running shoes from a shop in Porto."),
            ("Ana", "I signed up for a pottery class on Thursday evenings."),
            ("Ben", "Pottery is relaxing. I painted a sunset on the weekend."),
            ("Ana", "Send me a photo of it!"),
        ],
    ),
    3: (
        "7:31 pm on 2 June, 2023",
        [
            ("Ana", "Clara found an apartment in Kreuzberg near the canal."),
            ("Ben", "Nice. My knee hurts after the long run, I saw a physio."),
            ("Ana", "Take care of that knee before October."),
            ("Ben", "I will. The physio said two weeks of rest."),
            ("Ana", "My pottery teacher said my first bowl was lopsided but charming."),
            ("Ben", "Lopsided bowls have character. Here is my painting."),
        ],
    ),
}
QA = [
    ("What is the name of Ana's cat?", "Pixel", ["D1:1"], 4),
    ("What does Ben teach?", "Chemistry", ["D1:4"], 4),
    ("When did Ana adopt her cat?", "The weekend before 8 May 2023", ["D1:1"], 2),
    ("Where is Clara moving and where did she find an apartment?", "Berlin, Kreuzberg",
     ["D1:5; D3:1"], 1),
    ("Which marathon is Ben training for?", "Lisbon", ["D:1:2"], 4),
    ("Would Ben enjoy a painting class?", "Likely yes; he paints", ["D2:5"], 3),
    ("What did Ana's cat break?", "Nothing", ["D2:2"], 5),
    ("Broken evidence only", "x", ["D9:99", "D"], 4),
]  # fmt: skip


def synthetic_locomo() -> list[dict[str, Any]]:
    conversation: dict[str, Any] = {"speaker_a": "Ana", "speaker_b": "Ben"}
    for number, (date, turns) in SESSIONS.items():
        conversation[f"session_{number}_date_time"] = date
        conversation[f"session_{number}"] = [
            {"speaker": speaker, "dia_id": f"D{number}:{i}", "text": text}
            for i, (speaker, text) in enumerate(turns, start=1)
        ]
    conversation["session_3"][-1]["blip_caption"] = "a painting of a sunset over the sea"
    qa = [{"question": q, "answer": a, "evidence": e, "category": c} for q, a, e, c in QA]
    return [{"sample_id": "syn-1", "conversation": conversation, "qa": qa}]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-synthetic.json"
    path.write_text(json.dumps(synthetic_locomo()), encoding="utf-8")
    return path


def run(argv: list[str], out: Path, **models: Any) -> dict[str, Any]:
    assert main([*argv, "--json", str(out)], **models) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def check_systems_or_skipped(result: dict[str, Any], wanted: dict[str, str]) -> None:
    """Every system ran, unless its package is missing (then it is listed in 'skipped')."""
    for system, module in wanted.items():
        if installed(module):
            assert system in result["systems"], result["skipped"].get(system)
        else:
            assert system in result["skipped"]


# --- the loader ------------------------------------------------------------------------------


def test_loader_parses_turns_dates_and_cleans_evidence(data: Path) -> None:
    [conversation] = load_locomo(data)
    turns = conversation.turns
    assert len(turns) == 18
    assert turns[0].message_id == "syn-1:D1:1"
    assert turns[0].chat_role == "user" and turns[1].chat_role == "assistant"
    assert turns[0].created_at.isoformat().startswith("2023-05-08T13:56")
    assert turns[-1].text.endswith("[shares a photo: a painting of a sunset over the sea]")
    assert [t.index for t in turns] == list(range(18))
    questions = scored_questions(conversation)
    assert [q.category for q in questions] == [4, 4, 2, 1, 4, 3]  # adversarial, no-evidence out
    assert questions[3].evidence == ("D1:5", "D3:1")
    assert questions[4].evidence == ("D1:2",)
    assert conversation.dropped_evidence == 2
    assert len(scored_questions(conversation, limit=2)) == 2


def test_normalize_evidence() -> None:
    known = {"D1:1", "D8:6", "D9:17", "D11:26"}
    assert normalize_evidence(["D8:6; D9:17"], known) == (("D8:6", "D9:17"), 0)
    assert normalize_evidence(["D:11:26", "D1:1", "D1:1"], known) == (("D11:26", "D1:1"), 0)
    assert normalize_evidence(["D10:19", "D"], known) == ((), 2)


# --- locomo-retrieval --------------------------------------------------------------------------

RETRIEVAL_SYSTEMS = {
    "tiered-memory": "tiered_memory",
    "bm25": "rank_bm25",
    "chroma-dense": "chromadb",
    "llamaindex-vector-block": "llama_index.core",
    "mem0": "mem0",
}
METRIC_KEYS = {"recall@1", "recall@5", "recall@10", "recall@25", "ndcg@10"}


def test_locomo_retrieval_json_shape(data: Path, tmp_path: Path) -> None:
    result = run(
        ["locomo-retrieval", "--data", str(data), "--embedder", "hash",
         "--systems", ",".join([*RETRIEVAL_SYSTEMS, "tiered-memory-named"])],
        tmp_path / "retrieval.json",
    )  # fmt: skip
    assert set(result) == {"dataset", "format", "questions", "systems", "skipped"}
    assert result["questions"] == 6
    check_systems_or_skipped(result, {**RETRIEVAL_SYSTEMS, "tiered-memory-named": "tiered_memory"})
    for name, row in result["systems"].items():
        assert set(row) == METRIC_KEYS | {"p50_ms", "p95_ms", "by_category"}
        assert set(row["by_category"]) == {"1", "2", "3", "4"}
        assert sum(c["questions"] for c in row["by_category"].values()) == 6
        for key in METRIC_KEYS:
            assert 0.0 <= row[key] <= 1.0
        assert row["recall@1"] <= row["recall@5"] <= row["recall@10"] <= row["recall@25"]
        if name in ("tiered-memory", "bm25", "chroma-dense"):
            # 18 turns, k=25: these return every turn, so all the evidence is found
            assert row["recall@25"] == pytest.approx(1.0)
    assert (tmp_path / "retrieval.png").is_file()


def test_unknown_system_is_reported_not_dropped(data: Path, tmp_path: Path) -> None:
    result = run(
        ["locomo-retrieval", "--data", str(data), "--embedder", "hash", "--systems", "bm25,nope",
         "--limit-questions", "2", "--no-plot"],
        tmp_path / "r.json",
    )  # fmt: skip
    assert result["questions"] == 2
    assert "nope" in result["skipped"]
    assert not (tmp_path / "r.png").exists()


def test_missing_data_file_is_a_clear_error(tmp_path: Path, capsys: Any) -> None:
    assert main(["token-cost", "--data", str(tmp_path / "absent.json")]) == 1
    assert "--data" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA.is_file(), reason="shared LoCoMo file not present")
def test_locomo_retrieval_on_a_real_slice(tmp_path: Path) -> None:
    result = run(
        ["locomo-retrieval", "--data", str(REAL_DATA), "--limit-conversations", "1",
         "--limit-questions", "3", "--embedder", "hash", "--systems", "tiered-memory,bm25"],
        tmp_path / "real.json",
    )  # fmt: skip
    assert result["questions"] == 3
    assert set(result["systems"]) == {"tiered-memory", "bm25"}


# --- token-cost --------------------------------------------------------------------------------

TOKEN_SYSTEMS = {
    "full-history": "tiered_memory",
    "tiered-memory": "tiered_memory",
    "tiered-memory-background": "tiered_memory",
    "langchain-summarization": "langchain.agents.middleware",
    "llamaindex-memory": "llama_index.core",
    "llamaindex-chat-summary": "llama_index.core",
    "seed-policy": "tiered_memory",
}


def test_token_cost_json_shape(data: Path, tmp_path: Path) -> None:
    result = run(
        ["token-cost", "--data", str(data), "--window-tokens", "120", "--summary-tokens", "60",
         "--summary-output-tokens", "30"],
        tmp_path / "tokens.json",
    )  # fmt: skip
    check_systems_or_skipped(result, TOKEN_SYSTEMS)
    turns = 18
    assert result["conversations"] == [
        {"sample_id": "syn-1", "turns": turns, "tokens": result["conversation_tokens"]}
    ]
    assert "full-history-uncached" in result["systems"]
    for name, row in result["systems"].items():
        assert {"total_prompt_tokens", "max_prompt_tokens", "summarizer_calls",
                "summarizer_input_tokens", "cached_prompt_tokens", "cache_hit_share", "cost_usd",
                "overflow_turns", "cost_terms_usd"} <= set(row)  # fmt: skip
        assert set(row["overflow_turns"]) == {"8000", "32000", "128000"}
        terms = row["cost_terms_usd"]
        assert sum(terms.values()) == pytest.approx(row["cost_usd"]["gpt-4o-mini"], abs=1e-5)
        assert row["cached_prompt_tokens"] == 0  # every prompt is under the 1,024-token minimum
        assert all(usd > 0 for usd in row["cost_usd"].values())
        if name == "full-history-uncached":
            continue
        per_turn = result["per_turn"][name]
        assert len(per_turn["prompt_tokens"]) == turns
        assert sum(per_turn["prompt_tokens"]) == row["total_prompt_tokens"]
        assert sum(per_turn["summarizer_input_tokens"]) == row["summarizer_input_tokens"]
    full = result["systems"]["full-history"]
    assert full["max_prompt_tokens"] == result["conversation_tokens"]
    assert full["summarizer_calls"] == 0
    # a conversation several times the window makes every summarizing memory summarize
    # every prompt is under the minimum: the break counts say so; append-only never breaks
    assert full["prefix_breaks"] == {"summary": 0, "messages": 0, "below_minimum": turns}
    assert result["systems"]["tiered-memory"]["prefix_breaks"]["summary"] >= 1
    for name in ("tiered-memory", "seed-policy", "langchain-summarization"):
        if name in result["systems"]:
            assert result["systems"][name]["summarizer_calls"] > 0
            assert result["systems"][name]["total_prompt_tokens"] < full["total_prompt_tokens"]
    assert {
        "total_prompt_10x_below_full_history",
        "max_prompt_within_budget",
        "summarizer_input_at_most_1.3x_conversation",
        "cache_hit_share_at_least_0.8",
        "no_overflow_at_8k",
    } <= set(result["goals"]["tiered-memory"])
    assert (tmp_path / "tokens.png").is_file()


# --- overhead ----------------------------------------------------------------------------------


def test_overhead_json_shape(data: Path, tmp_path: Path) -> None:
    result = run(
        ["overhead", "--data", str(data), "--sizes", "40,80", "--queries", "5", "--no-isolate"],
        tmp_path / "overhead.json",
    )
    check_systems_or_skipped(
        result,
        {
            "tiered-memory": "tiered_memory",
            "llamaindex-memory": "llama_index.core",
            "llamaindex-vector-block": "llama_index.core",
            "mem0": "mem0",
        },
    )
    latency_keys = {"p50_ms", "p99_ms", "mean_ms", "samples", "peak_rss_mb"}
    tiered = result["systems"]["tiered-memory"]
    assert set(tiered["add_context"]) == latency_keys
    assert tiered["add_context"]["samples"] == 18
    assert set(tiered["recall"]) == {"40", "80"}
    for row in tiered["recall"].values():
        assert set(row) == latency_keys | {"build_s"}
        assert row["samples"] == 5
    assert "add_context" in result["systems"]["llamaindex-memory"]
    assert "recall" in result["systems"]["llamaindex-vector-block"]
    goals = result["goals"]["tiered-memory"]
    assert goals["recall_p50_at_most_30ms_at_100k"].startswith("not measured")
    assert (tmp_path / "overhead.png").is_file()


def test_overhead_measures_in_a_fresh_process(data: Path) -> None:
    from tiered_memory_bench.overhead import _in_child, measure_recall

    conversations = load_locomo(data)
    row = _in_child(measure_recall, "tiered-memory", conversations, 30, 3)
    assert row["samples"] == 3 and row["peak_rss_mb"] > 0


# --- locomo-qa ---------------------------------------------------------------------------------


def test_locomo_qa_without_a_key_exits_2(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["locomo-qa", "--data", str(data), "--json", str(tmp_path / "qa.json")]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "qa.json").exists()


def test_locomo_qa_with_injected_fake_models(data: Path, tmp_path: Path) -> None:
    from tiered_memory_bench.fakes import scripted_chat_model

    seen_memory: list[str] = []

    def answer(prompt: list[dict[str, str]]) -> str:
        seen_memory.append(prompt[0]["content"])
        return "Pixel"

    def judge(prompt: list[dict[str, str]]) -> str:
        text = prompt[-1]["content"]
        # the last occurrences: the judge prompt shows a worked example first
        gold = text.split("Gold answer: ")[-1].split("\n")[0]
        generated = text.split("Generated answer: ")[-1].split("\n")[0]
        return "CORRECT" if generated.lower() in gold.lower() else "WRONG"

    result = run(
        ["locomo-qa", "--data", str(data), "--answer-model", "fake-a", "--judge-model", "fake-j"],
        tmp_path / "qa.json",
        answer_model=scripted_chat_model(answer),
        judge_model=scripted_chat_model(judge),
    )
    assert result["questions"] == 6
    assert result["answer_model"] == "fake-a"
    tiered = result["systems"]["tiered-memory"]
    assert tiered["j"] == pytest.approx(1 / 6, abs=1e-4)  # only "What is the name of Ana's cat?"
    assert tiered["by_category"]["4"]["j"] == pytest.approx(1 / 3, abs=1e-4)
    assert len(result["labels"]) == 6
    assert {a["label"] for a in result["labels"]} == {"CORRECT", "WRONG"}
    # ids and labels only: no dataset text in the results
    assert "Ana's cat" not in (tmp_path / "qa.json").read_text(encoding="utf-8")
    assert "Pixel" in seen_memory[0]  # the model read the memory (window or recall hits)


def test_judge_label_parsing() -> None:
    from tiered_memory_bench.qa import judge_label

    assert judge_label("CORRECT") == "CORRECT"
    assert judge_label('{"label": "WRONG"}') == "WRONG"
    assert judge_label("It is INCORRECT") == "WRONG"
    assert judge_label("Reasoning... so: correct") == "CORRECT"
    assert judge_label("no idea") == "WRONG"


def test_embedder_option_takes_a_model_and_rejects_typos() -> None:
    import argparse

    from tiered_memory_bench.common import embedder_kind

    assert embedder_kind("default") == "default"
    assert embedder_kind("onnx:/models/other.onnx") == "onnx:/models/other.onnx"
    assert embedder_kind("sentence-transformers:all-mpnet-base-v2").endswith("mpnet-base-v2")
    for bad in ("minilm", "onnx:", "sentence-transformers:"):
        with pytest.raises(argparse.ArgumentTypeError):
            embedder_kind(bad)
