"""LangChainSummarizer and the OpenAI entry point."""

from __future__ import annotations

import pytest
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from lc_fakes import ScriptedChatModel

from langchain_tiered_memory import LangChainSummarizer, openai_summarizer_from_env
from tiered_memory import Message, Summarizer, SummarizerError, SummaryRequest

REQUEST = SummaryRequest(
    previous_summary="- User is called Kha.",
    messages=(Message(role="user", content="I live in Hanoi."),),
    max_tokens=100,
)


def test_sends_the_shared_prompt_and_returns_the_text() -> None:
    model = ScriptedChatModel(responder=lambda messages: "  - User is Kha, lives in Hanoi.  ")
    summarizer = LangChainSummarizer(model)
    assert isinstance(summarizer, Summarizer)
    assert summarizer.summarize(REQUEST) == "- User is Kha, lives in Hanoi."
    system, user = model.calls[0]
    assert isinstance(system, SystemMessage) and isinstance(user, HumanMessage)
    assert "- User is called Kha." in user.text and "User: I live in Hanoi." in user.text


async def test_async_summarize_uses_the_model() -> None:
    summarizer = LangChainSummarizer(FakeListChatModel(responses=["- Kha lives in Hanoi."]))
    assert await summarizer.asummarize(REQUEST) == "- Kha lives in Hanoi."


def test_empty_answer_is_a_summarizer_error() -> None:
    summarizer = LangChainSummarizer(FakeListChatModel(responses=["   "]))
    with pytest.raises(SummarizerError):
        summarizer.summarize(REQUEST)


def test_openai_entry_point_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert openai_summarizer_from_env() is None


def test_openai_entry_point_builds_chat_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    summarizer = openai_summarizer_from_env(model="gpt-4o")
    assert isinstance(summarizer, LangChainSummarizer)
    assert summarizer.chat_model.model_name == "gpt-4o"  # type: ignore[attr-defined]
    assert summarizer.chat_model.temperature == 0  # type: ignore[attr-defined]
