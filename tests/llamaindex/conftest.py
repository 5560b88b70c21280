"""Fixtures of the LlamaIndex adapter tests: temp stores, the fast hash embedder, small budgets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.llms import MockFunctionCallingLLM

from llamaindex_tiered_memory import TieredChatMemory
from tiered_memory import HashEmbedder

MemoryFactory = Callable[..., TieredChatMemory]


@pytest.fixture
def make_memory(tmp_path: Path) -> MemoryFactory:
    """``TieredChatMemory.from_defaults`` on a temp store, hash embedder, no retry delays."""

    def factory(
        session_id: str = "s1",
        user_id: str = "kha",
        *,
        token_limit: int = 200,
        summary_token_limit: int = 120,
        **kwargs: Any,
    ) -> TieredChatMemory:
        kwargs.setdefault("path", tmp_path)
        kwargs.setdefault("embed_model", HashEmbedder())
        kwargs.setdefault(
            "config", {"retry_backoff": 0.0, "summarizer_retries": 0, "compaction": "inline"}
        )
        return TieredChatMemory.from_defaults(
            session_id=session_id,
            user_id=user_id,
            token_limit=token_limit,
            summary_token_limit=summary_token_limit,
            **kwargs,
        )

    return factory


def _tool_calling_llm(tool_name: str, tool_kwargs: dict[str, Any]) -> MockFunctionCallingLLM:

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        last_user = max(i for i, m in enumerate(messages) if m.role == "user")
        results = [m for m in messages[last_user + 1 :] if m.role == "tool"]
        if results:
            return ChatMessage(role="assistant", content=f"Tool said: {results[-1].content}")
        call_id = f"call_{len(messages)}"
        return ChatMessage(
            role="assistant",
            blocks=[
                ToolCallBlock(tool_call_id=call_id, tool_name=tool_name, tool_kwargs=tool_kwargs)
            ],
        )

    return MockFunctionCallingLLM(response_generator=respond)


@pytest.fixture
def tool_calling_llm() -> Callable[[str, dict[str, Any]], MockFunctionCallingLLM]:
    """A function-calling mock factory: the LLM calls ``tool_name(**tool_kwargs)`` once per user
    turn, then answers ``"Tool said: <last tool result>"``."""
    return _tool_calling_llm
