from __future__ import annotations

import logging

import pytest

from tiered_memory import Message, ToolCall
from tiered_memory import tokens as tokens_module
from tiered_memory.tokens import TokenCounter, token_counter


def test_offline_encoding_is_used_when_the_model_encoding_cannot_download() -> None:
    counter = token_counter("gpt-4o-mini")
    assert counter.is_exact
    assert counter.count_text("hello world") == 2


def test_message_overhead_counts_role_name_and_tool_calls() -> None:
    counter = token_counter("gpt-4o-mini")
    plain = counter.count_message(Message(role="user", content="hello"))
    named = counter.count_message(Message(role="user", content="hello", name="kha"))
    call = Message(
        role="assistant", content="", tool_calls=(ToolCall("call_1", "search", '{"q": "x"}'),)
    )
    assert plain > counter.count_text("hello")
    assert named > plain
    assert counter.count_message(call) > counter.count_text('{"q": "x"}')


def test_falls_back_to_approximate_counter_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import tiktoken

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("no encodings here")

    monkeypatch.setattr(tiktoken, "encoding_for_model", broken)
    monkeypatch.setattr(tiktoken, "get_encoding", broken)
    tokens_module._load_encoding.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="tiered_memory.tokens"):
            counter = TokenCounter("some-model")
        assert not counter.is_exact
        assert counter.count_text("abcdefgh") == 2
        assert "approximate" in caplog.text
    finally:
        tokens_module._load_encoding.cache_clear()


def test_truncate_respects_the_budget() -> None:
    counter = token_counter()
    text = "one two three four five six seven eight nine ten"
    cut = counter.truncate(text, 4)
    assert counter.count_text(cut) <= 4
    assert text.startswith(cut)
