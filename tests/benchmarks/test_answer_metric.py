"""The answer-availability metric on hand-made prompts: normalization, hits, evidence location."""

from __future__ import annotations

import pytest
from tiered_memory_bench.answer_metric import (
    MISSING,
    PromptParts,
    answer_variants,
    contains_answer,
    normalize_answer,
    score_prompt,
)

EVIDENCE = "I adopted a grey cat called Pixel last weekend."


def prompt(**parts: list[str]) -> PromptParts:
    """A prompt whose text is its parts (the question is never part of the scored text)."""
    texts = [
        text for tier in ("summary", "window", "injected", "recall") for text in parts.get(tier, [])
    ]
    return PromptParts(messages=[], parts=dict(parts), scored_text="\n".join(texts), tokens=42)


def test_normalize_casefolds_strips_punctuation_and_articles() -> None:
    assert normalize_answer("The Lisbon Marathon!") == "lisbon marathon"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("  Serenity   Yoga.") == "serenity yoga"


def test_number_words_become_digits() -> None:
    assert normalize_answer("Three weeks") == "3 weeks"
    assert normalize_answer("twenty-five km") == "25 km"
    assert normalize_answer("twenty five") == "25"
    assert normalize_answer("$495") == "495"
    assert contains_answer(normalize_answer("I ran for three weeks straight"), "3 weeks")
    assert contains_answer(normalize_answer("It cost 4 dollars"), "four")


def test_answers_match_on_word_boundaries_only() -> None:
    text = normalize_answer("She turned 13 in the catalogue era.")
    assert not contains_answer(text, "3")
    assert not contains_answer(text, "cat")
    assert contains_answer(text, "13")
    assert not contains_answer(text, "...")  # nothing left after normalization: never a hit


def test_answer_only_in_the_summary_is_a_hit_without_evidence_coverage() -> None:
    score = score_prompt(
        prompt(summary=["- User: adopted a grey cat called Pixel."], window=["How are you?"]),
        "Pixel",
        [EVIDENCE],
    )
    assert score.answer_hit
    assert score.answer_in == ("summary",)
    assert score.evidence_coverage == 0.0  # the summary paraphrases: the turn is not verbatim
    assert score.evidence_where == (MISSING,)
    assert score.prompt_tokens == 42


def test_answer_only_in_a_recall_hit_counts_the_evidence_as_recalled() -> None:
    score = score_prompt(
        prompt(window=["Nice weather today."], recall=[EVIDENCE.replace(" ", "  ")]),
        "pixel",
        [EVIDENCE],
    )
    assert score.answer_hit
    assert score.answer_in == ("recall",)
    assert score.evidence_coverage == 1.0  # verbatim up to whitespace
    assert score.evidence_where == ("recall",)


def test_answer_nowhere_is_a_miss() -> None:
    score = score_prompt(
        prompt(summary=["- User: likes tea."], window=["Pixels are small dots."]),
        "Pixel",
        [EVIDENCE, "Another evidence turn."],
    )
    assert not score.answer_hit  # "pixels" is not the word "pixel"
    assert score.answer_in == ()
    assert score.evidence_coverage == 0.0
    assert score.evidence_where == (MISSING, MISSING)


def test_evidence_is_attributed_to_the_first_tier_holding_it() -> None:
    score = score_prompt(
        prompt(window=[EVIDENCE], recall=[EVIDENCE], injected=["other"]),
        "grey cat",
        [EVIDENCE, "never said"],
    )
    assert score.evidence_where == ("window", MISSING)
    assert score.evidence_coverage == pytest.approx(0.5)
    assert score.answer_in == ("window", "recall")


def test_evidence_never_spans_two_texts() -> None:
    score = score_prompt(
        prompt(window=["I adopted a grey cat", "called Pixel last weekend."]), "Pixel", [EVIDENCE]
    )
    assert score.evidence_where == (MISSING,)


def test_an_answer_that_names_an_alternative_accepts_either() -> None:
    gold = "14 days. 15 days (including the last day) is also acceptable."
    assert answer_variants(gold) == ["14 days", "15 days"]
    assert contains_answer(normalize_answer("that was 15 days later"), gold)
    assert contains_answer(normalize_answer("14 days ago"), gold)
    assert not contains_answer(normalize_answer("16 days ago"), gold)
    # Other answers with a full stop are one answer.
    assert answer_variants("4 days.") == ["4 days."]
    assert answer_variants("Not enough. You said X.") == ["Not enough. You said X."]
