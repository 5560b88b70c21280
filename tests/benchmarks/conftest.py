"""Benchmark tests never read or write the user's embedding cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_embedding_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "embedding-cache"
    monkeypatch.setenv("TIERED_MEMORY_BENCH_CACHE", str(folder))
    return folder
