"""Tier 2: the running summary — protocol, prompt, offline summarizer and the compaction loop."""

from __future__ import annotations

from .extractive import ExtractiveSummarizer, fact_score
from .prompt import SYSTEM_PROMPT, build_summary_prompt, render_transcript
from .protocol import SUMMARY_PREFIX, Summarizer, SummaryRequest

__all__ = [
    "SUMMARY_PREFIX",
    "SYSTEM_PROMPT",
    "ExtractiveSummarizer",
    "Summarizer",
    "SummaryRequest",
    "build_summary_prompt",
    "fact_score",
    "render_transcript",
]
