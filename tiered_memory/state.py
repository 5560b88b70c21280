"""The data every tier passes around: stored messages, session snapshots, eviction plans.

Data only, no I/O: the pure planners (``window``, ``summary.compaction``) and the session store
all speak these types, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .messages import Message


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
    """A consistent snapshot of one session (read in one transaction)."""

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

    @property
    def window_tokens(self) -> int:
        return sum(item.tokens for item in self.window)

    @property
    def pending_tokens(self) -> int:
        return sum(item.tokens for item in self.pending)


@dataclass(frozen=True)
class AppendResult:
    state: SessionState
    added: tuple[StoredMessage, ...]  # with the seq each new message got
    evicted: EvictionPlan = field(default_factory=lambda: EvictionPlan(0, 0))


__all__ = ["AppendResult", "EvictionPlan", "SessionState", "StoredMessage"]
