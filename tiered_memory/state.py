"""The data every tier passes around: stored messages, session snapshots, eviction plans.

Data only, no I/O: the pure planners (``window``, ``summary.compaction``) and the session store
all speak these types, so neither imports the other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .messages import Message

if TYPE_CHECKING:
    from .tokens import TokenCounter


@dataclass(frozen=True)
class StoredMessage:
    """A message with its token count (counted once, when stored)."""

    message: Message
    tokens: int
    seq: int = 0


@dataclass(frozen=True)
class EvictionPlan:
    """Evict the first ``evict_count`` window messages (``evict_tokens`` in all)."""

    evict_count: int
    evict_tokens: int

    @property
    def is_empty(self) -> bool:
        return self.evict_count == 0


@dataclass(frozen=True)
class SessionState:
    """A consistent snapshot of one session (read in one transaction).

    ``pending`` holds every pending message, except in a state loaded for the prompt
    (``load(..., pending_tail_tokens=N)``): there it holds the newest of them, more than ``N``
    tokens with the window, in whole tool units; ``pending_count`` / ``pending_tokens`` still
    count all of them.
    """

    user_id: str
    session_id: str
    summary: str = ""
    summary_tokens: int = 0
    summarized_upto: int = 0
    window_start: int = 0
    next_seq: int = 0
    version: int = 0
    history_tokens: int = 0
    summarizer_calls: int = 0
    summarizer_failures: int = 0
    summarizer_input_tokens: int = 0
    window: tuple[StoredMessage, ...] = ()
    pending: tuple[StoredMessage, ...] = ()
    messages_count: int = 0
    behind_since: float | None = None  # epoch seconds of the first eviction the summary lacks
    pending_total: tuple[int, int] | None = None  # (count, tokens) when ``pending`` is a tail

    @property
    def window_tokens(self) -> int:
        return sum(item.tokens for item in self.window)

    @property
    def pending_count(self) -> int:
        return self.pending_total[0] if self.pending_total else len(self.pending)

    @property
    def pending_tokens(self) -> int:
        if self.pending_total:
            return self.pending_total[1]
        return sum(item.tokens for item in self.pending)


@dataclass(frozen=True)
class AppendResult:
    """What one write changed, and what the background work needs to know of the session."""

    added: tuple[StoredMessage, ...]  # with the seq each new message got
    evicted: EvictionPlan = field(default_factory=lambda: EvictionPlan(0, 0))
    pending_count: int = 0  # out of the window, not yet in the summary (after this write)
    summary_tokens: int = 0
    behind_since: float | None = None


@dataclass(frozen=True)
class StoredDocument:
    """One Tier-3 document as the session store keeps it (the text the vector store holds)."""

    session_id: str
    message_id: str
    seq: int
    role: str
    created_at: str  # ISO 8601
    text: str
    name: str | None = None


@dataclass(frozen=True)
class MemoryStats:
    """Token accounting of one session (all figures in tokens unless named otherwise).

    ``history_tokens`` (every message of the session) and ``context_tokens`` (what the memory
    sends) count the same way, per-message overhead included and the reply priming of a prompt
    left out, so ``tokens_saved`` is exactly their difference. ``summarizer_input_tokens`` counts what the summarizer was given (previous
    summary and messages), not the fixed instructions around them.
    """

    window_tokens: int
    summary_tokens: int
    pending_tokens: int
    history_tokens: int
    context_tokens: int
    tokens_saved: int
    messages: int
    summarizer_calls: int
    summarizer_failures: int
    summarizer_input_tokens: int
    pending_messages: int = 0
    behind_seconds: float = 0.0  # how long the summary has lacked the oldest pending message


def memory_stats(
    state: SessionState, counter: TokenCounter, view: Sequence[Message]
) -> MemoryStats:
    context_tokens = counter.count_messages(view) - counter.count_messages([])
    history_tokens = state.history_tokens
    behind = time.time() - state.behind_since if state.pending_count and state.behind_since else 0.0
    return MemoryStats(
        window_tokens=state.window_tokens,
        summary_tokens=state.summary_tokens,
        pending_tokens=state.pending_tokens,
        history_tokens=history_tokens,
        context_tokens=context_tokens,
        tokens_saved=max(0, history_tokens - context_tokens),
        messages=state.messages_count,
        summarizer_calls=state.summarizer_calls,
        summarizer_failures=state.summarizer_failures,
        summarizer_input_tokens=state.summarizer_input_tokens,
        pending_messages=state.pending_count,
        behind_seconds=max(0.0, behind),
    )


__all__ = [
    "AppendResult",
    "EvictionPlan",
    "MemoryStats",
    "SessionState",
    "StoredDocument",
    "StoredMessage",
    "memory_stats",
]
