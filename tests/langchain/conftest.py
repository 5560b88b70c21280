"""Fixtures of the LangChain adapter tests: real temp stores, fast embedder, scripted models."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.pop("OPENAI_API_KEY", None)  # offline: never pick the OpenAI summarizer
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from langchain_tiered_memory import TieredChatMessageHistory
from tiered_memory import (
    ExtractiveSummarizer,
    HashEmbedder,
    MemoryConfig,
    TieredMemory,
)


@pytest.fixture
def small_config() -> MemoryConfig:
    return MemoryConfig(
        window_tokens=120,
        summary_tokens=80,
        retry_backoff=0.0,
        summarizer_retries=0,
        compaction="inline",
    )


@pytest.fixture
def memory_kwargs(tmp_path: Path, small_config: MemoryConfig) -> dict[str, Any]:
    """Constructor arguments shared by histories, caches and the middleware."""
    return {
        "path": tmp_path / "memory",
        "config": small_config,
        "summarizer": ExtractiveSummarizer(),
        "embeddings": HashEmbedder(),
    }


@pytest.fixture
def make_history(memory_kwargs: dict[str, Any]) -> Callable[..., TieredChatMessageHistory]:
    def factory(session_id: str = "s1", user_id: str = "kha") -> TieredChatMessageHistory:
        return TieredChatMessageHistory(session_id=session_id, user_id=user_id, **memory_kwargs)

    return factory


@pytest.fixture
def make_core_memory(memory_kwargs: dict[str, Any]) -> Callable[..., TieredMemory]:
    def factory(session_id: str = "s1", user_id: str = "kha") -> TieredMemory:
        return TieredMemory(
            session_id=session_id,
            user_id=user_id,
            path=memory_kwargs["path"],
            config=memory_kwargs["config"],
            summarizer=memory_kwargs["summarizer"],
            embedder=memory_kwargs["embeddings"],
        )

    return factory
