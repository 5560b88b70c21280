"""One write of a session: the append transaction with its eviction plan, and the lag check.

The decision (``window.plan_eviction``) is pure; this is the only place it meets the store, in
one transaction, so a crash leaves either the whole write or none of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from .config import MemoryConfig
from .state import AppendResult, StoredMessage
from .store import SessionStore
from .window import plan_eviction

logger = logging.getLogger("tiered_memory")

LAG_WARNING_EVERY = 60.0  # seconds between two lag warnings of one memory


def append_and_evict(
    store: SessionStore,
    user_id: str,
    session_id: str,
    batch: Sequence[StoredMessage],
    config: MemoryConfig,
) -> AppendResult:
    """Store ``batch`` and evict what no longer fits the window, atomically."""
    low = int(config.window_tokens * config.evict_to)
    with store.transaction(user_id, session_id) as tx:
        added = tx.append(batch, index=config.index_long_term)
        window = tx.window()
        plan = plan_eviction(window, config.window_tokens, low)
        tx.evict(window, plan.evict_count)
        pending = tx.finish()
    if plan.evict_count:
        logger.info(
            "session %s: evicted %d messages (%d tokens) from the window to the summarizer",
            session_id, plan.evict_count, plan.evict_tokens,
        )  # fmt: skip
    return AppendResult(
        added=added, evicted=plan, pending_count=pending, summary_tokens=tx.summary_tokens,
        behind_since=tx.behind_since,
    )  # fmt: skip


def summary_due(result: AppendResult, config: MemoryConfig) -> bool:
    """Whether the summarizer has work after this write (what ``plan_step`` would find)."""
    return result.pending_count > 0 or result.summary_tokens > config.summary_tokens


def warn_if_behind(
    session_id: str, result: AppendResult, config: MemoryConfig, last_warned: float
) -> float:
    """Log when the summary has lagged longer than ``config.summary_lag_warning``; returns when
    it last warned (at most one warning a minute per memory)."""
    now = time.time()
    lag = now - result.behind_since if result.behind_since and result.pending_count else 0.0
    if lag > config.summary_lag_warning and now - last_warned > LAG_WARNING_EVERY:
        logger.warning(
            "session %s: the summary is %.0fs behind (%d messages pending); is the summarizer "
            "failing? (see stats.behind_seconds)", session_id, lag, result.pending_count,
        )  # fmt: skip
        return now
    return last_warned


__all__ = ["append_and_evict", "summary_due", "warn_if_behind"]
