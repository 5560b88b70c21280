"""Tier 2's one loop: plan -> summarize -> validate -> commit, with lease, retries and backoff.

Written once as a step generator (``tiered_memory.steps``): ``add()`` in inline mode, the
background worker, ``compact()`` and ``acompact()`` all drive this same code. Exactly-once holds
across threads, tasks and processes: only the holder of the session's lease calls the summarizer,
the summary commit is version-checked, and pending messages live in the session store until a
summary covering them is committed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import MemoryConfig
from ..errors import SummarizerError, TieredMemoryError
from ..messages import Message
from ..state import SessionState
from ..steps import Call, Sleep, Steps, Summarize
from ..store import SessionStore
from ..tokens import TokenCounter
from .calls import SummarizerCall
from .compaction import AppliedSummary, CompactionStep, apply_step, plan_step
from .protocol import Summarizer

logger = logging.getLogger("tiered_memory")

MAX_STEPS = 10_000
MAX_COOLDOWN = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one summarizer request: ``retries`` more after the first, doubling delays."""

    retries: int
    first_delay: float

    def delays(self) -> list[float]:
        return [self.first_delay * 2**n for n in range(self.retries)]

    def cooldown(self, failures: int) -> float:
        """How long a session waits after ``failures`` failed runs before trying again."""
        return min(MAX_COOLDOWN, self.first_delay * 2 ** min(failures, 10))


class Compactor:
    """Tier 2 of one session: runs the loop, remembers failures and the next allowed attempt."""

    def __init__(
        self,
        user_id: str,
        session_id: str,
        store: SessionStore,
        call: SummarizerCall,
        counter: TokenCounter,
        prepare: Callable[[Message, Message | None], Message],
    ) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.store = store
        self.call = call
        self.counter = counter
        self.prepare = prepare
        self.failures = 0
        self.retry_after = 0.0
        self.after_commit: Callable[[str, int], Steps[Any]] | None = None
        """Runs after each summarized batch with (session_id, log position it covers): the fact
        pass (``recall.timeline.FactIndex``). Its failure is logged, never the summary's."""

    def due(self) -> bool:
        """Whether a failed session's cooldown is over (``compact()`` ignores it)."""
        return time.monotonic() >= self.retry_after

    def steps(
        self, summarizer: Summarizer, config: MemoryConfig, *, strict: bool = False
    ) -> Steps[SessionState]:
        """Summarize until the session is caught up (or another writer holds the lease).

        A failure is recorded and ends the run, leaving the messages pending; with ``strict`` it
        is raised as :class:`SummarizerError` (``compact()``).
        """
        state: SessionState = yield Call(self.store.load, (self.user_id, self.session_id))
        owner, held = uuid.uuid4().hex, False
        try:
            for _ in range(MAX_STEPS):
                step = plan_step(state, config, self.counter, self.prepare)
                if step is None:
                    break
                if not held:
                    held = yield Call(self._claim, (owner, config))
                    if not held:
                        break  # another writer is summarizing this session; it takes these too
                    state = yield Call(self.store.load, (self.user_id, self.session_id))
                    continue  # plan again on what the previous holder left
                try:
                    applied = yield from self._attempts(summarizer, step, config)
                except Exception as exc:
                    yield Call(self._failed, (exc, config))
                    if strict:
                        raise SummarizerError(f"summarizer failed: {exc}") from exc
                    break
                state = yield Call(self._commit, (state, step, applied))
                if self.after_commit is not None and step.request.messages:
                    yield from self._after_commit(step.summarized_upto)
        finally:
            if held:
                yield Call(self._release, (owner,))
        return state

    def bound(self, config: MemoryConfig) -> float:
        """The most seconds one run can take (every attempt timing out, every backoff)."""
        c = config
        return (c.summarizer_timeout + c.retry_backoff) * (c.summarizer_retries + 1) + 30.0

    def catch_up(
        self, summarizer: Summarizer, config: MemoryConfig, wait_for_worker: Call
    ) -> Steps[None]:
        """Run until caught up: after this session's background job, and while another writer
        (thread or process) holds the lease, waiting for it; SummarizerError on failure."""
        yield wait_for_worker
        deadline = time.monotonic() + self.bound(config)
        while True:
            state = yield from self.steps(summarizer, config, strict=True)
            if plan_step(state, config, self.counter) is None:
                return
            if time.monotonic() > deadline:
                raise SummarizerError("another writer holds this session's summarizer lease")
            yield Sleep(0.05)

    def _attempts(
        self, summarizer: Summarizer, step: CompactionStep, config: MemoryConfig
    ) -> Steps[AppliedSummary]:
        policy = RetryPolicy(config.summarizer_retries, config.retry_backoff)
        delays = policy.delays()
        for attempt in range(len(delays) + 1):
            try:
                answer = yield Summarize(
                    self.call, summarizer, step.request, config.summarizer_timeout
                )
                return apply_step(step, answer, config, self.counter)
            except Exception as exc:
                if attempt == len(delays):
                    raise
                logger.warning("summarizer attempt %d failed (%s); retrying", attempt + 1, exc)
                yield Sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _commit(
        self, state: SessionState, step: CompactionStep, applied: AppliedSummary
    ) -> SessionState:
        if applied.truncated:
            logger.warning("summary over budget after condensing; cut to %d tokens", applied.tokens)
        committed = self.store.commit_summary(
            state, applied.text, applied.tokens, step.summarized_upto, step.input_tokens
        )
        if committed:
            self.failures = 0
            logger.info(
                "session %s: summary %s (%d messages in, %d tokens now)",
                self.session_id, "condensed" if step.request.is_condense else "extended",
                len(step.request.messages), applied.tokens,
            )  # fmt: skip
        return self.store.load(self.user_id, self.session_id)

    def _after_commit(self, upto: int) -> Steps[None]:
        assert self.after_commit is not None
        try:
            yield from self.after_commit(self.session_id, upto)
        except Exception as exc:  # the batch stays unobserved: the next pass takes it
            logger.error("session %s: fact extraction failed (%r)", self.session_id, exc)

    def _failed(self, exc: BaseException, config: MemoryConfig) -> None:
        self.failures += 1
        cooldown = RetryPolicy(config.summarizer_retries, config.retry_backoff).cooldown(
            self.failures
        )
        self.retry_after = time.monotonic() + cooldown
        logger.error(
            "session %s: summarizer failed (%s: %s); messages stay pending, retry in %.1fs",
            self.session_id, type(exc).__name__, exc, cooldown,
        )  # fmt: skip
        try:
            self.store.record_failure(self.user_id, self.session_id)
        except TieredMemoryError:
            logger.exception("could not record the summarizer failure")

    def _claim(self, owner: str, config: MemoryConfig) -> bool:
        """Take or renew the session's summarizer lease; False while another writer holds it."""
        claim = getattr(self.store, "claim_compaction", None)
        if claim is None:  # a custom store without leases: the version check alone
            return True
        c = config
        ttl = (c.summarizer_timeout + c.retry_backoff * 2**c.summarizer_retries) * (
            c.summarizer_retries + 1
        ) + 30.0  # longer than any run: a live holder never loses it, a dead one frees it
        return bool(claim(self.user_id, self.session_id, owner, ttl))

    def _release(self, owner: str) -> None:
        release = getattr(self.store, "release_compaction", None)
        try:
            if release is not None:
                release(self.user_id, self.session_id, owner)
        except TieredMemoryError:
            logger.exception("could not release the summarizer lease; it expires by itself")


__all__ = ["Compactor", "RetryPolicy"]
