"""Tier 2 decisions, pure: what the next summarizer call is, and how its answer is applied.

``plan_step`` and ``apply_step`` are pure; :class:`~tiered_memory.summary.compactor.Compactor`
runs the one loop ``plan_step -> summarizer -> apply_step -> commit`` around them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import MemoryConfig
from ..errors import SummarizerError
from ..messages import Message, clipped
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
    prepare: Callable[[Message, Message | None], Message] | None = None,
) -> CompactionStep | None:
    """The next summarizer call for ``state``, or None when the summary is up to date.

    Pending messages are summarized first, in batches of whole tool units; an over-budget summary
    is then re-condensed. ``prepare`` maps each message (with the one before it) before it is sent (redaction).
    """
    if state.pending:
        count = take_batch(state.pending, config.summarizer_batch_tokens)
        batch = state.pending[:count]
        # A single huge message is sent cut to what one call may hold (the log keeps it whole).
        originals = [clipped(i.message, config.summarizer_batch_tokens * 8) for i in batch]
        messages = tuple(
            prepare(m, originals[n - 1] if n else None) if prepare else m
            for n, m in enumerate(originals)
        )
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


#: An extend answer may overshoot the budget (the next step condenses it), but never by more.
MAX_OVERSHOOT = 4


def validate_answer(answer: object, step: CompactionStep) -> str:
    """The summarizer's answer as text, or SummarizerError: it never becomes state unchecked."""
    if not isinstance(answer, str):
        raise SummarizerError(
            f"summarizer returned {type(answer).__name__}, not text; the messages stay pending"
        )
    text = answer.strip()
    if not text and (step.request.messages or step.request.previous_summary):
        raise SummarizerError("summarizer returned an empty summary; the messages stay pending")
    return text


def apply_step(
    step: CompactionStep, answer: object, config: MemoryConfig, counter: TokenCounter
) -> AppliedSummary:
    """Validate and normalize the summarizer's answer.

    An extend step may leave the summary over budget (the next step condenses it), at most
    ``MAX_OVERSHOOT`` times the budget; a condense step that still does not fit is cut to the
    budget, so the summary can never grow without bound whatever the model returns.
    """
    text = validate_answer(answer, step)
    limit = config.summary_tokens * (1 if step.request.is_condense else MAX_OVERSHOOT)
    if len(text) > limit * 16:  # cheap pre-cut: no token is longer than 16 characters here
        text = text[: limit * 16]
    tokens = counter.count_text(text)
    if tokens > limit:
        text = counter.truncate(text, limit).rstrip()
        return AppliedSummary(text, counter.count_text(text), True)
    return AppliedSummary(text, tokens, False)


__all__ = [
    "MAX_OVERSHOOT",
    "AppliedSummary",
    "CompactionStep",
    "apply_step",
    "plan_step",
    "validate_answer",
]
