"""Tier 2: the running summary — protocol, prompt, offline summarizer and the compaction loop.

Model-backed summarizers: :class:`OpenAICompatibleSummarizer` (any chat-completions server) and
:class:`LlamaCppSummarizer` (a local GGUF file; the ``local`` extra, imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .extractive import ExtractiveSummarizer, fact_score
from .openai_compatible import (
    OpenAICompatibleSummarizer,
    summarizer_from_config,
    summarizer_from_environment,
)
from .prompt import SYSTEM_PROMPT, build_summary_prompt, render_transcript
from .protocol import SUMMARY_PREFIX, Summarizer, SummaryRequest

if TYPE_CHECKING:
    from .llamacpp import LlamaCppSummarizer

__all__ = [
    "SUMMARY_PREFIX",
    "SYSTEM_PROMPT",
    "ExtractiveSummarizer",
    "LlamaCppSummarizer",
    "OpenAICompatibleSummarizer",
    "Summarizer",
    "SummaryRequest",
    "build_summary_prompt",
    "fact_score",
    "render_transcript",
    "summarizer_from_config",
    "summarizer_from_environment",
]


def __getattr__(name: str) -> Any:
    if name == "LlamaCppSummarizer":
        from .llamacpp import LlamaCppSummarizer

        return LlamaCppSummarizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
