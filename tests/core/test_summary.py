from __future__ import annotations

from tiered_memory import ExtractiveSummarizer, Message, SummaryRequest, build_summary_prompt
from tiered_memory.tokens import token_counter


def request(previous: str, *texts: str, max_tokens: int = 200) -> SummaryRequest:
    messages = tuple(Message(role="user", content=t) for t in texts)
    return SummaryRequest(previous_summary=previous, messages=messages, max_tokens=max_tokens)


def test_extractive_keeps_facts_and_drops_small_talk() -> None:
    summary = ExtractiveSummarizer().summarize(
        request("", "Hi!", "My name is Kha.", "Thanks!", "I moved to Hanoi in 2021.")
    )
    assert "My name is Kha." in summary
    assert "2021" in summary
    assert "Thanks" not in summary


def test_extractive_extends_the_previous_summary() -> None:
    summarizer = ExtractiveSummarizer()
    first = summarizer.summarize(request("", "My name is Kha."))
    second = summarizer.summarize(request(first, "I prefer Python over Java."))
    assert second.startswith(first)
    assert "Python" in second


def test_extractive_fits_the_budget_dropping_weak_lines_first() -> None:
    summarizer = ExtractiveSummarizer()
    texts = [f"I like topic number {i} quite a lot." for i in range(40)] + ["My name is Kha."]
    summary = summarizer.summarize(request("", *texts, max_tokens=60))
    assert token_counter().count_text(summary) <= 60
    assert "My name is Kha." in summary


def test_extractive_is_deterministic() -> None:
    req = request("", "My name is Kha.", "I work at Acme since May 2020.")
    assert ExtractiveSummarizer().summarize(req) == ExtractiveSummarizer().summarize(req)


def test_prompt_asks_to_extend_and_carries_both_summary_and_messages() -> None:
    prompt = build_summary_prompt(request("- Kha likes tea", "I moved to Hanoi."))
    text = prompt[-1]["content"]
    assert "Extend" in text and "Kha likes tea" in text and "Hanoi" in text
    assert prompt[0]["role"] == "system"


def test_condense_prompt_when_there_are_no_messages() -> None:
    prompt = build_summary_prompt(request("- a\n- b", max_tokens=10))
    assert "Condense" in prompt[-1]["content"]
