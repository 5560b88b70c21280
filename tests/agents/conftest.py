"""Fixtures of the Agents SDK adapter tests: real temp stores, the hashing embedder, no tracing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.pop("OPENAI_API_KEY", None)
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from agents import RunConfig, set_tracing_disabled

from openai_agents_tiered_memory import TieredSession
from tiered_memory import ExtractiveSummarizer, HashEmbedder, MemoryConfig

set_tracing_disabled(True)  # no exporter: traces would go to OpenAI


@pytest.fixture
def run_config() -> RunConfig:
    return RunConfig(tracing_disabled=True)


@pytest.fixture
def make_session(tmp_path: Path) -> Callable[..., TieredSession]:
    def factory(session_id: str = "s1", user_id: str = "kha", **config: Any) -> TieredSession:
        fields = {"window_tokens": 120, "summary_tokens": 80, "compaction": "inline", **config}
        return TieredSession(
            session_id,
            user_id,
            path=tmp_path / "memory",
            config=MemoryConfig(**fields),
            summarizer=ExtractiveSummarizer(),
            embedder=HashEmbedder(),
        )

    return factory
