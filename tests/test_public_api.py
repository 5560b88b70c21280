"""The public surface is pinned: a name added or dropped is a decision, never an accident."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

CORE = {
    "SUMMARY_PREFIX", "ChromaLongTermStore", "ConfigError", "Embedder", "EmbedderChangedError",
    "EmbedderError", "VectorIndexLostError",
    "ExtractiveSummarizer", "HashEmbedder", "InvalidMessageError", "LongTermStore",
    "MemoryConfig", "MemoryStats", "Message", "RankingWeights", "RecallFilters", "RecallHit",
    "Resources", "SessionStore", "SqlSessionStore", "StoreError", "Summarizer",
    "SummarizerError", "SummaryRequest", "TieredMemory", "TieredMemoryError", "TokenCounter",
    "ToolCall", "__version__", "as_embedder", "build_summary_prompt", "default_embedder",
    "default_resources", "format_recall_hits", "render_transcript", "token_counter",
}  # fmt: skip


def test_core_all_is_pinned() -> None:
    import tiered_memory

    assert set(tiered_memory.__all__) == CORE
    assert all(hasattr(tiered_memory, name) for name in tiered_memory.__all__)


@pytest.mark.parametrize(
    "module",
    [
        "tiered_memory.recall",
        "tiered_memory.summary",
        "tiered_memory.embeddings",
        "tiered_memory.store",
        "tiered_memory.state",
        "tiered_memory.steps",
        "tiered_memory.window",
        "langchain_tiered_memory",
        "llamaindex_tiered_memory",
    ],
)
def test_every_package_declares_what_it_exports(module: str) -> None:
    loaded = importlib.import_module(module)
    exported = getattr(loaded, "__all__", None)
    assert exported, f"{module} has no __all__"
    assert all(hasattr(loaded, name) for name in exported)


def test_the_core_imports_no_adapter_and_no_benchmark() -> None:
    code = (
        "import sys, tiered_memory, tiered_memory.cli;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain_tiered_memory', 'llamaindex_tiered_memory', 'tiered_memory_bench', "
        "'benchmarks', 'langchain', 'langchain_core', 'llama_index')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_installs_only_the_project_packages() -> None:
    """``pip install .`` ships the core, its thin adapters and the MCP server; the benchmarks are
    their own distribution (``bench/``) and no generic top-level name is installed."""
    from pathlib import Path

    import tomllib
    from setuptools import find_packages

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {name.split(".")[0] for name in find_packages(str(root), include=include)}
    assert top_level == {
        "tiered_memory",
        "langchain_tiered_memory",
        "llamaindex_tiered_memory",
        "openai_agents_tiered_memory",
        "tiered_memory_mcp",
    }
