"""``tiered-memory bench secrets`` on a tiny hand-written conversation in LoCoMo's format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiered_memory_bench.cli import main
from tiered_memory_bench.locomo import load_locomo
from tiered_memory_bench.secret_phrasings import FRESH, HELD_OUT, PHRASINGS, TUNING, Phrasing
from tiered_memory_bench.secrets import run_secrets, value_removed

from tiered_memory.redact import Finding

TURNS = [
    ("Ana", "Hi Ben! The key is to keep practising every day."),
    ("Ben", "True. I finally set up a password manager."),
    ("Ana", "Nice. My new flat is room 1204, come by on 2023-06-01."),
    ("Ben", "Dinner was $42.50, the secret is good olive oil."),
    ("Ana", "By the way, my wifi password is Seashell77"),  # a secret: counted as flagged
    ("Ben", "What's your password for the shared album?"),
    ("Ana", "Albatross"),  # the bare reply: flagged only thanks to the previous turn
]


def _locomo() -> list[dict[str, Any]]:
    conversation: dict[str, Any] = {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": speaker, "dia_id": f"D1:{i}", "text": text}
            for i, (speaker, text) in enumerate(TURNS, start=1)
        ],
    }
    return [{"sample_id": "syn-1", "conversation": conversation, "qa": []}]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-synthetic.json"
    path.write_text(json.dumps(_locomo()), encoding="utf-8")
    return path


def test_command_writes_recall_and_false_positives(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "secrets.json"
    assert main(["secrets", "--data", str(data), "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    positives, negatives = result["positives"], result["negatives"]
    assert positives["count"] == len(PHRASINGS)
    assert set(positives["by_batch"]) == {"tuning", "held_out", "fresh", "last"}
    assert {"de", "es", "fr", "it", "pt", "nl", "en"} <= set(positives["by_language"])
    assert "security_answer" in positives["by_class"]
    assert negatives["count"] == len(TURNS)
    assert [f["id"] for f in negatives["flagged"]] == ["syn-1:D1:5", "syn-1:D1:7"]
    assert negatives["false_positives"] == 2
    assert negatives["false_positive_rate"] == round(2 / len(TURNS), 4)
    assert "Seashell77" not in out.read_text(encoding="utf-8")  # ids only, never turn text


def test_limit_turns_bounds_the_negatives(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "secrets.json"
    assert main(["secrets", "--data", str(data), "--json", str(out), "--limit-turns", "3"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["negatives"]["count"] == 3


class NothingDetector:
    def find(self, text: str, *, previous: str | None = None, pii: bool = False) -> list[Finding]:
        return []


class CueWordOnlyDetector:
    """Fires on the cue word and leaves the value: must score no recall."""

    def find(self, text: str, *, previous: str | None = None, pii: bool = False) -> list[Finding]:
        start = text.lower().find("password")
        return [] if start < 0 else [Finding("password", start, start + 8)]


def test_a_detector_that_finds_nothing_scores_zero_recall(data: Path) -> None:
    phrasings = [Phrasing("password", "en", "my password is Seashell77", "Seashell77")]
    result = run_secrets(load_locomo(data), phrasings=phrasings, detector=NothingDetector())
    assert result["positives"]["recall"] == 0.0
    assert result["negatives"]["false_positives"] == 0


def test_firing_on_the_cue_word_without_removing_the_value_is_a_miss(data: Path) -> None:
    phrasings = [Phrasing("password", "en", "my password is Seashell77", "Seashell77")]
    result = run_secrets(load_locomo(data), phrasings=phrasings, detector=CueWordOnlyDetector())
    assert result["positives"]["recall"] == 0.0
    assert result["missed"][0]["text"] == "my password is Seashell77"


def test_value_removed_needs_every_word_of_the_value_gone() -> None:
    assert value_removed("Rosewood Elementary", "answer is [REDACTED_SECRET]")
    assert not value_removed("Rosewood Elementary", "answer is [REDACTED_SECRET] Elementary")
    assert value_removed("4417", "code [REDACTED_PASSWORD]")


def test_labelled_set_has_two_hundred_positives_in_seven_languages_with_their_values() -> None:
    assert len(PHRASINGS) >= 200
    assert len(TUNING) and len(HELD_OUT) and len(FRESH)
    assert {p.lang for p in PHRASINGS} == {"en", "de", "es", "fr", "it", "pt", "nl"}
    for p in PHRASINGS:
        assert p.value in p.text, p
    assert len({p.text for p in PHRASINGS}) == len(PHRASINGS)
