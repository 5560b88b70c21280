"""Shared fixtures: real temp stores (SQLite + embedded Chroma), fast embedder, fake summarizers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.pop("OPENAI_API_KEY", None)  # tests are offline: never pick the OpenAI default
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import servers

from tiered_memory import HashEmbedder, MemoryConfig, SummaryRequest, TieredMemory

tm_backend = servers.tm_backend  # fixture: the servers of .ci/run if TM_TEST_* are set, else {}


class FailingSummarizer:
    """Raises on every call until ``healthy`` is set."""

    def __init__(self) -> None:
        self.healthy = False
        self.calls = 0
        self.seen: list[str] = []

    def summarize(self, request: SummaryRequest) -> str:
        self.calls += 1
        if not self.healthy:
            raise ConnectionError("model unavailable")
        self.seen.extend(m.id for m in request.messages)
        lines = [request.previous_summary] if request.previous_summary else []
        lines += [f"- {m.role}: {m.content[:40]}" for m in request.messages]
        return "\n".join(lines)

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)


@pytest.fixture
def failing_summarizer() -> FailingSummarizer:
    return FailingSummarizer()


@pytest.fixture
def make_memory(tmp_path: Path, tm_backend: dict) -> Callable[..., TieredMemory]:
    def factory(
        session_id: str = "s1",
        user_id: str = "kha",
        *,
        path: Path | None = None,
        window_tokens: int = 120,
        summary_tokens: int = 80,
        **kwargs: object,
    ) -> TieredMemory:
        config_fields = {
            k: kwargs.pop(k) for k in list(kwargs) if k in MemoryConfig.__dataclass_fields__
        }
        config_fields = {
            "retry_backoff": 0.0,
            "summarizer_retries": 0,
            "compaction": "inline",  # deterministic: tests of background mode ask for it
            **tm_backend,
            **config_fields,
        }
        config = MemoryConfig(
            window_tokens=window_tokens,
            summary_tokens=summary_tokens,
            **config_fields,  # type: ignore[arg-type]
        )
        kwargs.setdefault("embedder", HashEmbedder())
        return TieredMemory(session_id, user_id, path or tmp_path, config, **kwargs)  # type: ignore[arg-type]

    return factory
