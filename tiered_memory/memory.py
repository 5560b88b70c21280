"""TieredMemory: the orchestrator of the three tiers, with sync and async twins.

Each write is: validate -> one store transaction (append + eviction plan) -> Tier-3 indexing ->
compaction of the pending messages. The decisions live in ``window`` and ``compaction`` (pure);
the twins differ only in how they call the summarizer, the embedder and the stores.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import resources as _registry
from .config import MemoryConfig
from .embeddings import Embedder, aembed_documents, aembed_query, as_embedder, check_vectors
from .errors import ConfigError, InvalidMessageError, SummarizerError, TieredMemoryError
from .messages import Message, MessageLike, ToolCall, coerce_message, make_message
from .recall.chroma import LongTermStore
from .recall.lexical import IndexedDoc, LexicalIndex, lexical_indexes
from .recall.ranking import RankingWeights, hybrid_rank
from .recall.records import (
    LongTermRecord,
    RecallHit,
    RecallQuery,
    hit_from_metadata,
    record_key,
    record_metadata,
)
from .state import AppendResult, EvictionPlan, SessionState, StoredMessage
from .store import SessionStore
from .summary import SUMMARY_PREFIX, ExtractiveSummarizer, Summarizer, SummaryRequest
from .summary.compaction import CompactionStep, apply_step, plan_step
from .tokens import TokenCounter, token_counter
from .window import fit_view, plan_eviction

logger = logging.getLogger("tiered_memory")

_MAX_COMPACTION_STEPS = 10_000
_MAX_ID_LENGTH = 255
_INDEX_CHUNK = 256  # messages embedded and upserted together


@dataclass
class _Lease:
    """One compaction run's hold on the session's summarizer (``claim_compaction``)."""

    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    held: bool = False


@dataclass(frozen=True)
class MemoryStats:
    """Token accounting of one session (all figures in tokens unless named otherwise).

    ``summarizer_input_tokens`` counts what the summarizer was given (previous summary and
    messages), not the fixed instructions of the prompt template around them.
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


class TieredMemory:
    """Window + running summary + long-term recall for one ``(user_id, session_id)``.

    Args:
        session_id: the conversation; unique within a user.
        user_id: the owner; Tier-3 recall never crosses users.
        path: directory of the embedded SQLite session store and the embedded Chroma store.
        config: budgets and back-ends (:class:`MemoryConfig`).
        summarizer: Tier-2 model (``summarize``/``asummarize``); None picks gpt-4o-mini through
            the ``openai`` extra when ``OPENAI_API_KEY`` is set, else the offline extractive one.
        embedder: Tier-3 embedder; None is the embedded MiniLM. LangChain ``Embeddings``,
            LlamaIndex ``BaseEmbedding`` and Chroma embedding functions are accepted.
        session_store / long_term: inject stores (tests, custom back-ends).
        ranking: recall fusion weights (``RankingWeights``); the defaults are principled, not
            fitted, and benchmarks use this to measure each signal's contribution.
    """

    def __init__(
        self,
        session_id: str,
        user_id: str,
        path: str | os.PathLike[str] = "./.tiered_memory",
        config: MemoryConfig | None = None,
        summarizer: Summarizer | None = None,
        embedder: Any | None = None,
        *,
        session_store: SessionStore | None = None,
        long_term: LongTermStore | None = None,
        ranking: RankingWeights | None = None,
    ) -> None:
        self.session_id = _check_id(session_id, "session_id")
        self.user_id = _check_id(user_id, "user_id")
        if config is not None and not isinstance(config, MemoryConfig):
            raise ConfigError(f"config must be a MemoryConfig, got {type(config).__name__}")
        self.config = config or MemoryConfig()
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"path must be a str or a path, got {type(path).__name__}")
        self.path = Path(path)
        self.counter: TokenCounter = token_counter(self.config.model)
        self.summarizer: Summarizer = resolve_summarizer(summarizer, self.config)
        self._embedder_arg = embedder
        self._embedder: Embedder | None = None if embedder is None else as_embedder(embedder)
        self._store: SessionStore = session_store or _registry.session_store(self.path, self.config)
        self._long_term: LongTermStore | None = long_term
        self._retry_after = 0.0
        self._consecutive_failures = 0
        self._backlog_possible = True  # a crash may have left messages unindexed
        self._waiting = 0  # messages this memory stored that wait for the Tier-3 batch
        self._weights = ranking or RankingWeights()

    # --- wiring --------------------------------------------------------------------------

    @property
    def store(self) -> SessionStore:
        return self._store

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = as_embedder(self._embedder_arg)
        return self._embedder

    @property
    def long_term(self) -> LongTermStore:
        if self._long_term is None:
            self._long_term = _registry.long_term_store(self.path, self.config)
        return self._long_term

    def __repr__(self) -> str:
        return f"TieredMemory(user_id={self.user_id!r}, session_id={self.session_id!r})"

    # --- validation (shared by the twins) ----------------------------------------------

    def _prepare(self, messages: Iterable[MessageLike]) -> list[StoredMessage]:
        if isinstance(messages, (str, bytes, Mapping, Message)) or not isinstance(
            messages, Iterable
        ):
            raise InvalidMessageError("add_messages takes a list of messages, not a single one")
        batch = [coerce_message(m) for m in messages]  # raises before anything is stored
        seen: set[str] = set()
        for message in batch:
            _check_id(message.id, "message id", InvalidMessageError)
            if message.id in seen:
                raise InvalidMessageError(f"message id {message.id!r} appears twice in one batch")
            seen.add(message.id)
        if self.config.secrets == "redact_all":
            batch = [self._redacted(m) for m in batch]
        return [StoredMessage(m, self.counter.count_message(m)) for m in batch]

    def _planner(self, window: Sequence[StoredMessage]) -> EvictionPlan:
        low = int(self.config.window_tokens * self.config.evict_to)
        return plan_eviction(window, self.config.window_tokens, low)

    def _redacted(self, message: Message) -> Message:
        if self.config.secrets == "keep":
            return message
        from .redact import redact

        result = redact(message.content)
        calls = tuple(
            ToolCall(c.id, c.name, redact(c.arguments).text) for c in message.tool_calls
        )  # tool arguments carry secrets too ({"api_key": "sk-..."})
        if not result.changed and calls == message.tool_calls:
            return message
        return replace(message, content=result.text, tool_calls=calls)

    # --- writes ----------------------------------------------------------------------------

    def add(
        self,
        role: str,
        content: str,
        *,
        name: str | None = None,
        tool_calls: Sequence[ToolCall | Mapping[str, Any]] = (),
        tool_call_id: str | None = None,
        id: str | None = None,
        created_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Store one message; returns it (with its id and created_at)."""
        message = make_message(
            role, content, name=name, tool_calls=tool_calls, tool_call_id=tool_call_id,
            id=id, created_at=created_at, metadata=metadata,
        )  # fmt: skip
        return self.add_messages([message])[0]

    async def aadd(
        self,
        role: str,
        content: str,
        *,
        name: str | None = None,
        tool_calls: Sequence[ToolCall | Mapping[str, Any]] = (),
        tool_call_id: str | None = None,
        id: str | None = None,
        created_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        message = make_message(
            role, content, name=name, tool_calls=tool_calls, tool_call_id=tool_call_id,
            id=id, created_at=created_at, metadata=metadata,
        )  # fmt: skip
        return (await self.aadd_messages([message]))[0]

    def add_messages(self, messages: Iterable[MessageLike]) -> list[Message]:
        """Store a batch atomically (all valid or nothing stored); known ids are skipped."""
        batch = self._prepare(messages)
        if not batch:
            return []
        result = self._store.append(
            self.user_id, self.session_id, batch, self._planner, self.config.index_long_term
        )
        self._log_append(result)
        if self._index_due(result):
            self._index_backlog()
        self._compact(result.state, force=False)
        return [item.message for item in batch]

    async def aadd_messages(self, messages: Iterable[MessageLike]) -> list[Message]:
        batch = self._prepare(messages)
        if not batch:
            return []
        result = await asyncio.to_thread(
            self._store.append,
            self.user_id,
            self.session_id,
            batch,
            self._planner,
            self.config.index_long_term,
        )
        self._log_append(result)
        if self._index_due(result):
            await self._aindex_backlog()
        await self._acompact(result.state, force=False)
        return [item.message for item in batch]

    def _log_append(self, result: AppendResult) -> None:
        if result.evicted.evict_count:
            logger.info(
                "session %s: evicted %d messages (%d tokens) from the window to the summarizer",
                self.session_id, result.evicted.evict_count, result.evicted.evict_tokens,
            )  # fmt: skip

    # --- Tier 3 indexing ---------------------------------------------------------------------

    def _index_due(self, result: AppendResult) -> bool:
        """Whether this write should run the Tier-3 batch (see ``MemoryConfig.index_batch``)."""
        if not self.config.index_long_term:
            return False
        self._waiting += len(result.added)
        return self._backlog_possible or self._waiting >= self.config.index_batch

    def _index_backlog(self) -> None:
        items = self._backlog()
        self._backlog_possible, self._waiting = False, 0  # a failure below sets it again
        for start in range(0, len(items), _INDEX_CHUNK):
            self._index(items[start : start + _INDEX_CHUNK])

    async def _aindex_backlog(self) -> None:
        items = await asyncio.to_thread(self._backlog)
        self._backlog_possible, self._waiting = False, 0
        for start in range(0, len(items), _INDEX_CHUNK):
            await self._aindex(items[start : start + _INDEX_CHUNK])

    def flush(self) -> None:
        """Write every message still waiting for Tier 3 now (recall always does this first)."""
        self._index_backlog()

    async def aflush(self) -> None:
        await self._aindex_backlog()

    def _backlog(self) -> list[tuple[str, StoredMessage]]:
        """Messages stored but not yet in Tier 3 (a crash or an embedder failure before)."""
        return self._store.unindexed(self.user_id, limit=100_000)

    def _documents(self, items: Sequence[tuple[str, StoredMessage]]) -> list[IndexedDoc]:
        """What Tier 3 stores for each message: redacted text, with its speaker when named."""
        docs = []
        for session_id, item in items:
            message = self._redacted(item.message)
            text = message.content
            for call in message.tool_calls:
                text += f"\n[called tool {call.name}({call.arguments})]"
            text = text.strip() or "(empty)"
            if message.name:
                text = f"{message.name}: {text}"
            record = LongTermRecord(
                user_id=self.user_id, session_id=session_id, message_id=message.id,
                role=message.role, text=text, created_at=message.created_at,
                embedding=(), name=message.name, seq=item.seq,
            )  # fmt: skip
            docs.append(IndexedDoc(record.key, text, record_metadata(record)))
        return docs

    def _records(
        self,
        items: Sequence[tuple[str, StoredMessage]],
        docs: Sequence[IndexedDoc],
        vectors: list[list[float]],
    ) -> list[LongTermRecord]:
        return [
            LongTermRecord(
                user_id=self.user_id,
                session_id=session_id,
                message_id=item.message.id,
                role=item.message.role,
                text=doc.text,
                created_at=item.message.created_at,
                embedding=vector,
                name=item.message.name,
                seq=item.seq,
            )
            for (session_id, item), doc, vector in zip(items, docs, vectors, strict=True)
        ]

    def _index_failed(self, count: int, exc: BaseException) -> None:
        self._backlog_possible = True
        logger.error("Tier-3 indexing failed; %d messages will be retried: %r", count, exc)

    def _index(self, items: Sequence[tuple[str, StoredMessage]]) -> None:
        if not items:
            return
        try:
            docs = self._documents(items)
            vectors = self.embedder.embed_documents([d.text for d in docs])
            vectors = check_vectors(vectors, len(docs))
            self.long_term.upsert(self.user_id, self._records(items, docs, vectors))
            self._store.mark_indexed(self.user_id, [(s, i.message.id) for s, i in items])
            lexical_indexes(self.long_term).added(self.user_id, docs)
        except Exception as exc:  # the embedder is user code: never let it lose a message
            self._index_failed(len(items), exc)

    async def _aindex(self, items: Sequence[tuple[str, StoredMessage]]) -> None:
        if not items:
            return
        try:
            docs = self._documents(items)
            vectors = await aembed_documents(self.embedder, [d.text for d in docs])
            records = self._records(items, docs, check_vectors(vectors, len(docs)))
            await asyncio.to_thread(self.long_term.upsert, self.user_id, records)
            await asyncio.to_thread(
                self._store.mark_indexed, self.user_id, [(s, i.message.id) for s, i in items]
            )
            lexical_indexes(self.long_term).added(self.user_id, docs)
        except Exception as exc:
            self._index_failed(len(items), exc)

    # --- Tier 2 compaction (the twins share plan_step / apply_step) ------------------------

    def _compaction_allowed(self, force: bool) -> bool:
        return force or time.monotonic() >= self._retry_after

    def _on_summarizer_failure(self, exc: BaseException) -> None:
        self._consecutive_failures += 1
        cooldown = min(
            300.0, self.config.retry_backoff * (2 ** min(self._consecutive_failures, 10))
        )
        self._retry_after = time.monotonic() + cooldown
        logger.error(
            "summarizer failed (%s: %s); messages stay pending, retry in %.1fs",
            type(exc).__name__, exc, cooldown,
        )  # fmt: skip
        try:
            self._store.record_failure(self.user_id, self.session_id)
        except TieredMemoryError:
            logger.exception("could not record the summarizer failure")

    def _commit(self, state: SessionState, step: CompactionStep, answer: str) -> SessionState:
        applied = apply_step(step, answer, self.config, self.counter)
        if not applied.text and state.summary:
            raise SummarizerError("summarizer returned an empty summary for a non-empty one")
        if applied.truncated:
            logger.warning("condensed summary still over budget; cut to %d tokens", applied.tokens)
        committed = self._store.commit_summary(
            state, applied.text, applied.tokens, step.summarized_upto, step.input_tokens
        )
        if committed:
            self._consecutive_failures = 0
            logger.info(
                "session %s: summary %s (%d messages in, %d tokens now)",
                self.session_id, "condensed" if step.request.is_condense else "extended",
                len(step.request.messages), applied.tokens,
            )  # fmt: skip
        return self._store.load(self.user_id, self.session_id)

    def _claim(self, lease: _Lease) -> bool:
        """Take or renew the session's summarizer lease; False while another writer holds it."""
        claim = getattr(self._store, "claim_compaction", None)
        if claim is None:  # a custom store without leases: the version check alone
            lease.held = True
            return True
        c = self.config
        ttl = (c.summarizer_timeout + c.retry_backoff * 2**c.summarizer_retries) * (
            c.summarizer_retries + 1
        ) + 30.0
        lease.held = bool(claim(self.user_id, self.session_id, lease.owner, ttl))
        return lease.held

    def _release(self, lease: _Lease) -> None:
        if not lease.held:
            return
        lease.held = False
        release = getattr(self._store, "release_compaction", None)
        try:
            if release is not None:
                release(self.user_id, self.session_id, lease.owner)
        except TieredMemoryError:
            logger.exception("could not release the summarizer lease; it expires by itself")

    def _compact(self, state: SessionState, force: bool) -> SessionState:
        if not self._compaction_allowed(force):
            return state
        lease = _Lease()
        for _ in range(_MAX_COMPACTION_STEPS):
            step = plan_step(state, self.config, self.counter, self._redacted)
            if step is None:
                break
            try:
                fresh_claim = not lease.held
                if not self._claim(lease):
                    break  # another writer is summarizing this session; it takes these too
                if fresh_claim:  # plan again on what the previous holder left
                    state = self._store.load(self.user_id, self.session_id)
                    continue
                answer = self._call_summarizer(step.request)
                state = self._commit(state, step, answer)
            except Exception as exc:
                self._on_summarizer_failure(exc)
                break
        self._release(lease)
        return state

    async def _acompact(self, state: SessionState, force: bool) -> SessionState:
        if not self._compaction_allowed(force):
            return state
        lease = _Lease()
        for _ in range(_MAX_COMPACTION_STEPS):
            step = plan_step(state, self.config, self.counter, self._redacted)
            if step is None:
                break
            try:
                fresh_claim = not lease.held
                if not await asyncio.to_thread(self._claim, lease):
                    break  # another writer is summarizing this session; it takes these too
                if fresh_claim:  # plan again on what the previous holder left
                    state = await asyncio.to_thread(self._store.load, self.user_id, self.session_id)
                    continue
                answer = await self._acall_summarizer(step.request)
                state = await asyncio.to_thread(self._commit, state, step, answer)
            except Exception as exc:
                await asyncio.to_thread(self._on_summarizer_failure, exc)
                break
        await asyncio.to_thread(self._release, lease)
        return state

    def _call_summarizer(self, request: SummaryRequest) -> str:
        delay = self.config.retry_backoff
        for attempt in range(self.config.summarizer_retries + 1):
            try:
                return _run_with_timeout(
                    self.summarizer.summarize, request, self.config.summarizer_timeout
                )
            except Exception as exc:
                if attempt == self.config.summarizer_retries:
                    raise
                logger.warning("summarizer attempt %d failed (%s); retrying", attempt + 1, exc)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _acall_summarizer(self, request: SummaryRequest) -> str:
        delay = self.config.retry_backoff
        for attempt in range(self.config.summarizer_retries + 1):
            try:
                return await asyncio.wait_for(
                    self.summarizer.asummarize(request), self.config.summarizer_timeout
                )
            except Exception as exc:
                if attempt == self.config.summarizer_retries:
                    raise
                logger.warning("summarizer attempt %d failed (%s); retrying", attempt + 1, exc)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def compact(self) -> None:
        """Summarize pending messages now (e.g. once the model is back after an outage)."""
        self._compact(self._store.load(self.user_id, self.session_id), force=True)

    async def acompact(self) -> None:
        state = await asyncio.to_thread(self._store.load, self.user_id, self.session_id)
        await self._acompact(state, force=True)

    # --- reads -------------------------------------------------------------------------------

    def _view(self, state: SessionState, reserve_tokens: int) -> list[Message]:
        return build_context(state, self.config, self.counter, reserve_tokens)

    def context_messages(self, reserve_tokens: int = 0) -> list[Message]:
        """[summary as a system message] + window, as Message objects, within the budget."""
        _check_reserve(reserve_tokens)
        return self._view(self._store.load(self.user_id, self.session_id), reserve_tokens)

    async def acontext_messages(self, reserve_tokens: int = 0) -> list[Message]:
        _check_reserve(reserve_tokens)
        state = await asyncio.to_thread(self._store.load, self.user_id, self.session_id)
        return self._view(state, reserve_tokens)

    def context(self, reserve_tokens: int = 0) -> list[dict[str, Any]]:
        """The prompt to send: OpenAI chat dicts, [system summary] + window."""
        return [m.to_openai() for m in self.context_messages(reserve_tokens)]

    async def acontext(self, reserve_tokens: int = 0) -> list[dict[str, Any]]:
        return [m.to_openai() for m in await self.acontext_messages(reserve_tokens)]

    @property
    def summary(self) -> str:
        """The current Tier-2 summary ("" before the first compaction)."""
        return self._store.load(self.user_id, self.session_id).summary

    async def asummary_text(self) -> str:
        state = await asyncio.to_thread(self._store.load, self.user_id, self.session_id)
        return state.summary

    def window(self) -> list[Message]:
        return [i.message for i in self._store.load(self.user_id, self.session_id).window]

    def pending(self) -> list[Message]:
        """Messages out of the window and not yet in the summary (the summarizer is behind)."""
        return [i.message for i in self._store.load(self.user_id, self.session_id).pending]

    def history(self) -> list[Message]:
        """Every message of this session, in order, exactly once."""
        return self._store.history(self.user_id, self.session_id)

    async def ahistory(self) -> list[Message]:
        return await asyncio.to_thread(self._store.history, self.user_id, self.session_id)

    @property
    def stats(self) -> MemoryStats:
        state = self._store.load(self.user_id, self.session_id)
        view = self._view(state, 0)
        context_tokens = self.counter.count_messages(view)
        full = self.counter.count_messages([]) + state.history_tokens
        return MemoryStats(
            window_tokens=state.window_tokens,
            summary_tokens=state.summary_tokens,
            pending_tokens=state.pending_tokens,
            history_tokens=state.history_tokens,
            context_tokens=context_tokens,
            tokens_saved=max(0, full - context_tokens),
            messages=state.messages_count,
            summarizer_calls=state.summarizer_calls,
            summarizer_failures=state.summarizer_failures,
            summarizer_input_tokens=state.summarizer_input_tokens,
        )

    # --- Tier 3 recall ------------------------------------------------------------------------

    def _recall_query(
        self, query: str, k: int | None, session_id: str | None,
        since: datetime | None, until: datetime | None, exclude_window: bool,
    ) -> RecallQuery:  # fmt: skip
        if not isinstance(query, str) or not query.strip():
            raise InvalidMessageError("recall query must be a non-empty string")
        k = self.config.recall_k if k is None else k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
            raise InvalidMessageError(f"k must be an int in [1, 1000], got {k!r}")
        if session_id is not None:
            _check_id(session_id, "session_id", InvalidMessageError)
        return RecallQuery(
            text=query,
            k=k,
            session_id=session_id,
            since=_as_utc(since, "since").timestamp() if since is not None else None,
            until=_as_utc(until, "until").timestamp() if until is not None else None,
            exclude_window=exclude_window,
        )

    def _recall_prepare(self, request: RecallQuery) -> tuple[set[str], LexicalIndex]:
        """List the window's keys and get a fresh lexical index (after the Tier-3 flush)."""
        excluded: set[str] = set()
        if request.exclude_window:
            state = self._store.load(self.user_id, self.session_id)
            excluded = {record_key(self.session_id, i.message.id) for i in state.window}
        return excluded, lexical_indexes(self.long_term).fresh(self.user_id)

    def _recall_rank(
        self,
        request: RecallQuery,
        nearest: Sequence[tuple[str, float]],
        excluded: set[str],
        index: LexicalIndex,
    ) -> list[RecallHit]:
        missing = [key for key, _ in nearest if index.slot_of(key) is None]
        if missing:  # written by another process after the index was refreshed
            index.add(
                IndexedDoc(h.record_key, h.text, h.metadata)
                for h in self.long_term.fetch(self.user_id, missing)
            )
        dense: dict[int, float] = {}
        for key, distance in nearest:
            slot = index.slot_of(key)
            if slot is not None:
                dense[slot] = 1.0 - distance
        allowed = index.mask(request.session_id, request.since, request.until)
        for key in excluded:
            slot = index.slot_of(key)
            if slot is not None:
                allowed[slot] = False
        ranked = hybrid_rank(dense, index.scores(request.text), index, allowed, self._weights)
        hits = []
        for slot, score in ranked[: request.k]:
            doc = index.docs[slot]
            if doc is not None:
                hits.append(hit_from_metadata(doc.text, doc.metadata, score))
        return hits

    def recall(
        self,
        query: str,
        k: int | None = None,
        *,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        exclude_window: bool = True,
    ) -> list[RecallHit]:
        """Search this user's long-term memory (all sessions unless ``session_id``).

        Hybrid ranking: dense similarity and BM25, fused, with conversational neighbours (see
        ``tiered_memory.ranking``). Messages still in this session's window are left out: the
        model already sees them. Scores are comparable within one call only.
        """
        request = self._recall_query(query, k, session_id, since, until, exclude_window)
        self._index_backlog()
        excluded, index = self._recall_prepare(request)
        vector = self.embedder.embed_query(query)
        nearest = self.long_term.nearest(
            self.user_id, vector, self._pool(request, excluded), request.chroma_filters()
        )
        return self._recall_rank(request, nearest, excluded, index)

    async def arecall(
        self,
        query: str,
        k: int | None = None,
        *,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        exclude_window: bool = True,
    ) -> list[RecallHit]:
        request = self._recall_query(query, k, session_id, since, until, exclude_window)
        await self._aindex_backlog()
        excluded, index = await asyncio.to_thread(self._recall_prepare, request)
        vector = await aembed_query(self.embedder, query)
        nearest = await asyncio.to_thread(
            self.long_term.nearest,
            self.user_id,
            vector,
            self._pool(request, excluded),
            request.chroma_filters(),
        )
        return self._recall_rank(request, nearest, excluded, index)

    def _pool(self, request: RecallQuery, excluded: set[str]) -> int:
        return max(self._weights.pool, 4 * request.k) + len(excluded)

    # --- deletion ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete this session everywhere: log, window, summary and its Tier-3 vectors."""
        ids = self._store.clear(self.user_id, self.session_id)
        if ids and self.config.index_long_term:
            keys = [record_key(self.session_id, i) for i in ids]
            self.long_term.delete(self.user_id, keys)
            lexical_indexes(self.long_term).removed(self.user_id, keys)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    def forget(self, *, message_id: str | None = None, user_id: str | None = None) -> int:
        """Erase data from every tier; returns how many messages were removed.

        ``forget(message_id=...)`` removes that message from this user's sessions, the vector
        store and (by re-deriving it) the summary. ``forget(user_id=...)`` removes everything of
        that user; it must be this memory's user.
        """
        if (message_id is None) == (user_id is None):
            raise InvalidMessageError("forget takes exactly one of message_id= or user_id=")
        if user_id is not None:
            if user_id != self.user_id:
                raise InvalidMessageError(
                    f"this memory belongs to user {self.user_id!r}; open one for {user_id!r} to forget it"
                )
            removed = self._store.forget_user(self.user_id)
            self.long_term.delete_user(self.user_id)
            lexical_indexes(self.long_term).drop(self.user_id)
            return len(removed)
        removed = self._store.forget_message(
            self.user_id, _check_id(message_id, "message_id", InvalidMessageError)
        )
        if removed:
            keys = [record_key(s, m) for s, m in removed]
            self.long_term.delete(self.user_id, keys)
            lexical_indexes(self.long_term).removed(self.user_id, keys)
            self._compact(self._store.load(self.user_id, self.session_id), force=True)
        return len(removed)

    async def aforget(self, *, message_id: str | None = None, user_id: str | None = None) -> int:
        return await asyncio.to_thread(self.forget, message_id=message_id, user_id=user_id)

    def close(self) -> None:
        """Write what waits for Tier 3; the stores are shared per path and stay open."""
        try:
            self.flush()
        except TieredMemoryError:
            logger.exception("could not flush Tier 3 on close; the messages wait in the log")


# --- pure helpers ------------------------------------------------------------------------------


def build_context(
    state: SessionState, config: MemoryConfig, counter: TokenCounter, reserve_tokens: int = 0
) -> list[Message]:
    """The prompt for ``state``: summary message, the newest pending messages that fit the unused
    summary budget (only while the summarizer is behind), then the window within its budget."""
    view: list[Message] = []
    summary_budget = config.summary_tokens
    if state.summary:
        summary_message = Message(
            role="system",
            content=f"{SUMMARY_PREFIX}\n{state.summary}",
            id=f"summary:{state.session_id}",
        )
        view.append(summary_message)
        summary_budget -= counter.count_message(summary_message)
    window_budget = max(0, config.window_tokens - reserve_tokens)
    window = list(state.window)
    start = fit_view(window, window_budget)
    shown = window[start:]
    if state.pending and start == 0 and summary_budget > 0:
        pending = list(state.pending)
        view.extend(i.message for i in pending[fit_view(pending, summary_budget) :])
    view.extend(i.message for i in shown)
    while (
        len(view) > (1 if state.summary else 0) and view[1 if state.summary else 0].role == "tool"
    ):
        view.pop(1 if state.summary else 0)  # a result whose call is not shown is meaningless
    return view


def _as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidMessageError(f"{name} must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _check_id(value: object, what: str, error: type[Exception] = ConfigError) -> str:
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > _MAX_ID_LENGTH:
        raise error(f"{what} is longer than {_MAX_ID_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no store can hold it
        raise error(f"{what} is not valid Unicode text: {exc}") from exc
    return value


def _check_reserve(reserve_tokens: int) -> None:
    if not isinstance(reserve_tokens, int) or reserve_tokens < 0:
        raise InvalidMessageError(f"reserve_tokens must be an int >= 0, got {reserve_tokens!r}")


_timeout_pool = concurrent.futures.ThreadPoolExecutor(
    max_workers=4, thread_name_prefix="tm-summarize"
)


def _run_with_timeout(function: Any, request: SummaryRequest, timeout: float) -> str:
    future = _timeout_pool.submit(function, request)
    try:
        return str(future.result(timeout=timeout))
    except concurrent.futures.TimeoutError as exc:
        raise SummarizerError(f"summarizer timed out after {timeout}s") from exc


def resolve_summarizer(summarizer: Any | None, config: MemoryConfig) -> Summarizer:
    """The given summarizer, or the default: OpenAI when a key and the extra are there."""
    if summarizer is not None:
        if not callable(getattr(summarizer, "summarize", None)):
            raise ConfigError(
                f"{type(summarizer).__name__} is not a summarizer: it needs summarize(request) "
                "and asummarize(request) (see tiered_memory.Summarizer)"
            )
        if not callable(getattr(summarizer, "asummarize", None)):
            return _AsyncFromSync(summarizer)
        return summarizer  # type: ignore[no-any-return]
    if os.environ.get("OPENAI_API_KEY"):
        loaded = _registry.summarizer_plugin("openai", config.model)
        if loaded is not None:
            return loaded
        logger.warning(
            "OPENAI_API_KEY is set but the 'openai' extra is not installed "
            "(pip install 'tiered-memory[openai]'); using the offline extractive summarizer"
        )
    return ExtractiveSummarizer(model=config.model)


class _AsyncFromSync:
    """Gives a sync-only summarizer an ``asummarize`` (in a worker thread)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def summarize(self, request: SummaryRequest) -> str:
        return str(self.inner.summarize(request))

    async def asummarize(self, request: SummaryRequest) -> str:
        return await asyncio.to_thread(self.summarize, request)


__all__ = ["MemoryStats", "TieredMemory", "build_context", "resolve_summarizer"]
