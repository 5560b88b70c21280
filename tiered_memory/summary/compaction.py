"""Tier 2 decisions, pure: what the next summarizer call is, and how its answer is applied.

``TieredMemory`` runs the loop ``plan_step -> summarizer -> apply_step -> commit`` with a sync or an
async summarizer call; everything else is shared here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import MemoryConfig
from ..messages import Message
from ..state import SessionState
from ..tokens import TokenCounter
from ..window import take_batch
from .protocol import SummaryRequest


@dataclass(frozen=True)
class CompactionStep:
    """One summarizer call: the request, and the log position the summary covers afterwards."""

    request: SummaryRequest
    summarized_upto: int
    input_tokens: int


def plan_step(
    state: SessionState,
    config: MemoryConfig,
    counter: TokenCounter,
    prepare: Callable[[Message], Message] | None = None,
) -> CompactionStep | None:
    """The next summarizer call for ``state``, or None when the summary is up to date.

    Pending messages are summarized first, in batches of whole tool units; an over-budget summary
    is then re-condensed. ``prepare`` maps each message before it is sent (secret redaction).
    """
    if state.pending:
        count = take_batch(state.pending, config.summarizer_batch_tokens)
        batch = state.pending[:count]
        messages = tuple(prepare(i.message) if prepare else i.message for i in batch)
        request = SummaryRequest(
            previous_summary=state.summary,
            messages=messages,
            max_tokens=config.summary_tokens,
            model=config.model,
        )
        upto = batch[-1].seq + 1
        tokens = counter.count_text(state.summary) + sum(i.tokens for i in batch)
        return CompactionStep(request, upto, tokens)
    if state.summary_tokens > config.summary_tokens:
        request = SummaryRequest(
            previous_summary=state.summary,
            messages=(),
            max_tokens=config.summary_tokens,
            model=config.model,
        )
        return CompactionStep(request, state.summarized_upto, state.summary_tokens)
    return None


@dataclass(frozen=True)
class AppliedSummary:
    text: str
    tokens: int
    truncated: bool


def apply_step(
    step: CompactionStep, answer: str, config: MemoryConfig, counter: TokenCounter
) -> AppliedSummary:
    """Normalize the summarizer's answer.

    An extend step may leave the summary over budget (the next step condenses it); a condense step
    that still does not fit is cut to the budget, so the summary can never grow without bound.
    """
    text = (answer or "").strip()
    tokens = counter.count_text(text)
    if step.request.is_condense and tokens > config.summary_tokens:
        text = counter.truncate(text, config.summary_tokens).rstrip()
        return AppliedSummary(text, counter.count_text(text), True)
    return AppliedSummary(text, tokens, False)
