"""``tiered-memory bench summarizer`` on the hand-written LoCoMo-format conversation: shape of the
JSON, the --max-turns cut, the llama.cpp speed record (with a stand-in model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_commands import synthetic_locomo
from tiered_memory_bench.cli import main
from tiered_memory_bench.locomo import load_locomo
from tiered_memory_bench.summarizer_eval import TimedSummarizer, evaluate, scored_within

from tiered_memory import SummaryRequest


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-synthetic.json"
    path.write_text(json.dumps(synthetic_locomo()), encoding="utf-8")
    return path


def test_the_command_reports_compression_and_hits_per_mode(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    argv = ["summarizer", "--data", str(data)]  # default: baseline,extractive (no model needed)
    assert main([*argv, "--summary-tokens", "60", "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    for name in ("baseline", "extractive"):
        for mode in ("budgeted", "unbounded"):
            cell = result["summarizers"][name][mode]
            assert cell["questions"] == 6
            assert cell["summary_tokens"] <= (60 if mode == "budgeted" else 10**9)
            assert cell["compression"] == round(
                cell["summarized_tokens"] / cell["summary_tokens"], 2
            )
            assert 0 <= cell["answer_hits"] <= cell["questions"]


def test_max_turns_scores_only_questions_within_the_replayed_turns(data: Path) -> None:
    [conversation] = load_locomo(data)
    within = scored_within(conversation, 6, None)  # session 1 only
    assert {q.answer for q in within} == {"Pixel", "Chemistry", "The weekend before 8 May 2023",
                                          "Lisbon"}  # fmt: skip
    assert len(scored_within(conversation, None, None)) == 6
    result = evaluate([conversation], ["extractive"], max_turns=6, modes=["unbounded"])
    cell = result["summarizers"]["extractive"]["unbounded"]
    assert cell["questions"] == 4
    assert result["max_turns"] == 6


def test_llamacpp_needs_a_gguf_path(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarizer", "--data", str(data), "--summarizers", "llamacpp"]) == 2
    assert "--gguf" in capsys.readouterr().err


class _Model:
    """Stands in for LlamaCppSummarizer: a fixed summary and llama.cpp-style timings."""

    def __init__(self) -> None:
        self.last_timings: dict[str, Any] = {}

    def summarize(self, request: SummaryRequest) -> str:
        self.last_timings = {
            "prompt_n": 400,
            "prompt_ms": 8000.0,
            "predicted_n": 50,
            "predicted_ms": 10000.0,
        }
        return "Ana: has a cat named Pixel"


def test_the_speed_record_sums_llama_cpp_timings(data: Path) -> None:
    timed = TimedSummarizer(_Model())
    result = evaluate(
        load_locomo(data), ["llamacpp"], modes=["budgeted"], factory=lambda name: timed
    )
    cell = result["summarizers"]["llamacpp"]["budgeted"]
    speed = cell["speed"]
    assert speed["calls"] == cell["summarizer_calls"] >= 1
    assert speed["prompt_tokens"] == 400 * speed["calls"]
    assert speed["prompt_tokens_per_second"] == 50.0
    assert speed["generated_tokens_per_second"] == 5.0
    assert speed["peak_rss_mb"] > 0
    assert cell["last_summary"] == "Ana: has a cat named Pixel"
    assert cell["answer_hits"] == 1  # "Pixel" is in the summary
