"""TieredMemory: the facade over the three tiers, with sync and async twins.

A write is: validate (``validation``) -> one store transaction that appends and evicts per
``window.plan_eviction`` -> Tier 3 (``recall.index``) and Tier 2 (``summary.compactor``), inline or
on the background worker. Every method is a step generator driven by ``steps.run`` (sync) or
``steps.arun`` (async): the twins differ only in that one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from typing_extensions import Unpack

from .config import MemoryConfig
from .embeddings import Embedder, as_embedder
from .errors import ConfigError, InvalidMessageError, StoreError, TieredMemoryError
from .facts import FactBook, FactExtractor
from .messages import Message, MessageFields, MessageLike
from .recall.chroma import LongTermStore
from .recall.index import LongTermIndex
from .recall.ranking import RankingWeights
from .recall.records import RecallHit, record_key
from .recall.timeline import FactIndex
from .resources import Resources, default_resources
from .state import AppendResult, MemoryStats, SessionState, StoredMessage, memory_stats
from .steps import Call, Steps, arun, run
from .store import SessionStore
from .summary.compactor import Compactor
from .summary.protocol import Summarizer
from .summary.resolve import resolve_summarizer
from .tokens import TokenCounter, token_counter
from .validation import (
    RecallFilters,
    build_message,
    check_id,
    check_reserve,
    prepare_batch,
    recall_query,
    secret_filter,
)
from .vault import Vault, open_vault
from .window import build_context, max_pending_shown
from .writes import append_and_evict, summary_due, warn_if_behind

logger = logging.getLogger("tiered_memory")


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
        ranking: recall fusion weights (``RankingWeights``), for ablations.
        resources: the process-wide stores, caches and background worker to use (default: the
            process's shared :class:`~tiered_memory.resources.Resources`).
        fact_extractor: what turns each compacted batch into facts about the user
            (:class:`~tiered_memory.facts.FactExtractor`, one call per batch); None is the
            offline English one. ``MemoryConfig(facts=False)`` turns facts off.
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
        resources: Resources | None = None,
        fact_extractor: FactExtractor | None = None,
    ) -> None:
        self.session_id = check_id(session_id, "session_id")
        self.user_id = check_id(user_id, "user_id")
        if config is not None and not isinstance(config, MemoryConfig):
            raise ConfigError(f"config must be a MemoryConfig, got {type(config).__name__}")
        self.config = config or MemoryConfig()
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"path must be a str or a path, got {type(path).__name__}")
        self.path = Path(path)
        self.counter: TokenCounter = token_counter(self.config.model)
        self.summarizer: Summarizer = resolve_summarizer(summarizer, self.config)
        self._embedder: Embedder | None = None if embedder is None else as_embedder(embedder)
        self.resources = resources or default_resources()
        self._store = session_store or self.resources.session_store(self.path, self.config)
        self._long_term = long_term
        self.vault: Vault | None = open_vault(self.config, self.path, self._store, self.user_id)
        prepare = self.vault.prepare if self.vault is not None else secret_filter(self.config)
        self.tier3 = LongTermIndex(
            self.user_id, self._store, lambda: self.long_term, lambda: self.embedder, prepare,
            ranking,
        )  # fmt: skip
        self._job_key = (str(getattr(self._store, "url", id(self._store))), user_id, session_id)
        call = self.resources.summarizer_call(*self._job_key)
        self.compactor = Compactor(user_id, session_id, self._store, call, self.counter, prepare)
        self.facts: FactIndex | None = self._fact_index(fact_extractor, prepare)
        if self.facts is not None:
            self.compactor.after_commit = self.facts.after_compaction_steps
            self.tier3.facts = self.facts.book
        self._backlog_possible = True  # a crash may have left messages unindexed
        self._waiting = 0  # messages stored by this memory that wait for the Tier-3 batch
        self._lag_warned = 0.0

    @property
    def store(self) -> SessionStore:
        return self._store

    def _fact_index(self, extractor: FactExtractor | None, prepare: Any) -> FactIndex | None:
        if not self.config.facts:
            if extractor is not None:
                raise ConfigError("fact_extractor given while MemoryConfig.facts is False")
            return None
        engine = getattr(self._store, "engine", None)
        if engine is None:  # a custom session store: facts need the SQL tables
            if extractor is not None:
                raise ConfigError("facts need the SQL session store (SqlSessionStore)")
            return None
        book = FactBook(engine, self.user_id, extractor)
        return FactIndex(
            book, self._store, self.tier3.vectors, prepare, documents=self.config.index_long_term,
        )  # fmt: skip

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:  # the bundled model loads on first use, not at construction
            self._embedder = as_embedder(None)
        return self._embedder

    @property
    def long_term(self) -> LongTermStore:
        if self._long_term is None:
            self._long_term = self.resources.long_term_store(self.path, self.config)
        return self._long_term

    def __repr__(self) -> str:
        return f"TieredMemory(user_id={self.user_id!r}, session_id={self.session_id!r})"

    def __enter__(self) -> TieredMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> TieredMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- writes ----------------------------------------------------------------------------

    def add(self, role: str, content: str, **fields: Unpack[MessageFields]) -> Message:
        """Store one message (``name``, ``tool_calls``, ``tool_call_id``, ``id``,
        ``created_at``, ``metadata`` as keywords); returns it with its id and created_at."""
        return self.add_messages([build_message(role, content, **fields)])[0]

    async def aadd(self, role: str, content: str, **fields: Unpack[MessageFields]) -> Message:
        return (await self.aadd_messages([build_message(role, content, **fields)]))[0]

    def add_messages(self, messages: Iterable[MessageLike]) -> list[Message]:
        """Store a batch atomically (all valid or nothing stored); known ids are skipped."""
        with self.resources.foreground.turn():
            return run(self._add_steps(prepare_batch(messages, self.config, self.counter)))

    async def aadd_messages(self, messages: Iterable[MessageLike]) -> list[Message]:
        with self.resources.foreground.turn():
            return await arun(self._add_steps(prepare_batch(messages, self.config, self.counter)))

    def _add_steps(self, batch: list[StoredMessage]) -> Steps[list[Message]]:
        if batch and self.vault is not None:  # the log holds placeholders, the vault the values
            batch = yield from self.vault.seal_steps(batch, self.counter.count_message)
        if batch:
            result = yield Call(self._append, (batch,))
            self._waiting += len(result.added)
            index = self.config.index_long_term and (
                self._backlog_possible or self._waiting >= self.config.index_batch
            )
            summarize = self.compactor.due() and summary_due(result, self.config)
            if self.config.compaction == "inline":
                yield from self._work_steps(index, summarize)
            elif index or summarize:
                job = lambda: self._background(index, summarize)  # noqa: E731
                self.resources.worker.submit(self._job_key, job)
        return [item.message for item in batch]

    def _append(self, batch: Sequence[StoredMessage]) -> AppendResult:
        result = append_and_evict(self._store, self.user_id, self.session_id, batch, self.config)
        self._lag_warned = warn_if_behind(self.session_id, result, self.config, self._lag_warned)
        return result

    def _background(self, index: bool, summarize: bool) -> None:
        """A worker job: each of its steps waits for a gap between the user's turns."""
        foreground = self.resources.foreground
        deadline = foreground.deadline()
        run(self._work_steps(index, summarize), pace=lambda: foreground.wait_gap(deadline))
        foreground.wait_gap(deadline)
        try:
            self._store.checkpoint()
        except StoreError as exc:
            logger.warning("session store checkpoint failed (retried after the next job): %s", exc)

    def _work_steps(self, index: bool, summarize: bool) -> Steps[None]:
        """Tier 3 then Tier 2 for this session; failures leave the work pending, never raise."""
        if index:
            yield from self._index_steps()
        if summarize:
            yield from self.compactor.steps(self.summarizer, self.config)

    def _index_steps(self) -> Steps[None]:
        self._backlog_possible, self._waiting = False, 0  # a failure below sets it again
        try:
            yield from self.tier3.index_steps()
        except Exception as exc:  # the embedder is user code: never let it lose a message
            self._backlog_possible = True
            logger.error("Tier-3 indexing failed; the messages will be retried: %r", exc)

    def flush(self) -> None:
        """Write every message still waiting for Tier 3 now (recall always does this first)."""
        run(self._index_steps())

    async def aflush(self) -> None:
        await arun(self._index_steps())

    def compact(self) -> None:
        """Summarize what is pending now and wait until the session is caught up.

        Raises:
            SummarizerError: the summarizer failed after its retries (the messages stay pending).
        """
        run(self._catch_up_steps())

    async def acompact(self) -> None:
        await arun(self._catch_up_steps())

    def _catch_up_steps(self) -> Steps[None]:
        wait = Call(self.resources.worker.wait, (self._job_key, self.compactor.bound(self.config)))
        yield from self.compactor.catch_up(self.summarizer, self.config, wait)

    # --- reads -------------------------------------------------------------------------------

    def _load(self) -> Steps[SessionState]:
        return (yield Call(self._store.load, (self.user_id, self.session_id)))  # type: ignore[no-any-return]

    def _context_steps(self, reserve_tokens: int) -> Steps[list[Message]]:
        check_reserve(reserve_tokens)
        # Only the newest pending messages a prompt can show are read, however far behind.
        tail = max_pending_shown(self.config)
        state = yield Call(
            self._store.load, (self.user_id, self.session_id), {"pending_tail_tokens": tail}
        )
        return build_context(state, self.config, self.counter, reserve_tokens)

    def context_messages(self, reserve_tokens: int = 0) -> list[Message]:
        """[summary as a system message] + window, as Message objects, within the budget."""
        with self.resources.foreground.turn():
            return run(self._context_steps(reserve_tokens))

    async def acontext_messages(self, reserve_tokens: int = 0) -> list[Message]:
        with self.resources.foreground.turn():
            return await arun(self._context_steps(reserve_tokens))

    def context(self, reserve_tokens: int = 0) -> list[dict[str, Any]]:
        """The prompt to send: OpenAI chat dicts, [system summary] + window."""
        return [m.to_openai() for m in self.context_messages(reserve_tokens)]

    async def acontext(self, reserve_tokens: int = 0) -> list[dict[str, Any]]:
        return [m.to_openai() for m in await self.acontext_messages(reserve_tokens)]

    @property
    def summary(self) -> str:
        """The current Tier-2 summary ("" before the first compaction)."""
        return run(self._load()).summary

    async def asummary_text(self) -> str:
        return (await arun(self._load())).summary

    def window(self) -> list[Message]:
        return [i.message for i in run(self._load()).window]

    def pending(self) -> list[Message]:
        """Messages out of the window and not yet in the summary (the summarizer is behind)."""
        return [i.message for i in run(self._load()).pending]

    def history(self) -> list[Message]:
        """Every message of this session, in order, exactly once (vaulted secrets revealed)."""
        return run(self._history_steps())

    async def ahistory(self) -> list[Message]:
        return await arun(self._history_steps())

    def _history_steps(self) -> Steps[list[Message]]:
        messages = yield Call(self._store.history, (self.user_id, self.session_id))
        if self.vault is not None:
            messages = yield Call(self.vault.reveal_messages, (messages,))
        return messages  # type: ignore[no-any-return]

    @property
    def stats(self) -> MemoryStats:
        state = run(self._load())
        view = build_context(state, self.config, self.counter)
        return memory_stats(state, self.counter, view)

    # --- Tier 3 recall ------------------------------------------------------------------------

    def recall(
        self, query: str, k: int | None = None, **filters: Unpack[RecallFilters]
    ) -> list[RecallHit]:
        """Search this user's long-term memory (all sessions unless ``session_id=``).

        Filters: ``session_id``, ``since``/``until`` (datetimes), ``exclude_window`` (default
        True: messages still in this session's window are left out, the model sees them),
        ``as_of`` (facts valid then and turns said up to then), ``now`` (when the question is
        asked, default the clock: "last week" or "in May" in the query lift what was said then).
        Facts come back with ``role == "fact"``; a superseded one says "was true until ...".
        Hybrid ranking: dense similarity and BM25, fused, with conversational neighbours.
        Scores are comparable within one call only.
        """
        with self.resources.foreground.turn():
            return run(self._recall_steps(query, k, **filters))

    async def arecall(
        self, query: str, k: int | None = None, **filters: Unpack[RecallFilters]
    ) -> list[RecallHit]:
        with self.resources.foreground.turn():
            return await arun(self._recall_steps(query, k, **filters))

    def _recall_steps(
        self, query: str, k: int | None, *, session_id: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        exclude_window: bool = True, as_of: datetime | None = None, now: datetime | None = None,
    ) -> Steps[list[RecallHit]]:  # fmt: skip
        request = recall_query(
            query, self.config.recall_k if k is None else k, session_id, since, until,
            exclude_window, as_of, now,
        )  # fmt: skip
        yield from self._index_steps()
        excluded: set[str] = set()
        if exclude_window:
            state = yield from self._load()
            excluded = {record_key(self.session_id, i.message.id) for i in state.window}
        hits = yield from self.tier3.search_steps(request, excluded)
        if self.vault is not None:  # the owner gets the values back, nobody else
            hits = yield Call(self.vault.reveal_hits, (hits,))
        return hits

    # --- deletion ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete this session everywhere: log, window, summary and its Tier-3 vectors."""
        run(self._clear_steps())

    async def aclear(self) -> None:
        await arun(self._clear_steps())

    def _clear_steps(self) -> Steps[None]:
        held = yield from self._vault_held(session_id=self.session_id)
        ids = yield Call(self._store.clear, (self.user_id, self.session_id))
        yield from self.tier3.forget_steps([(self.session_id, i) for i in ids])
        if self.facts is not None:
            yield from self.facts.forget_session_steps(self.session_id)
        yield from self._vault_erase(held)

    def _vault_held(self, **where: str) -> Steps[set[str]]:
        if self.vault is None:
            return set()
        return (yield Call(self.vault.referenced, (), where))  # type: ignore[no-any-return]

    def _vault_erase(self, held: set[str]) -> Steps[None]:
        """Erase the vault entries of removed messages that no remaining message holds."""
        if self.vault is not None and held:
            yield Call(self.vault.erase_unreferenced, (held,))

    def forget(self, *, message_id: str | None = None, user_id: str | None = None) -> int:
        """Erase data from every tier; returns how many messages were removed.

        ``forget(message_id=...)`` removes that message from this user's sessions, the vector
        store and (by re-deriving it) the summary. ``forget(user_id=...)`` removes everything of
        that user; it must be this memory's user. Every other process sees it on its next read.
        """
        return run(self._forget_steps(message_id, user_id))

    async def aforget(self, *, message_id: str | None = None, user_id: str | None = None) -> int:
        return await arun(self._forget_steps(message_id, user_id))

    def _forget_steps(self, message_id: str | None, user_id: str | None) -> Steps[int]:
        if (message_id is None) == (user_id is None):
            raise InvalidMessageError("forget takes exactly one of message_id= or user_id=")
        if user_id is not None:
            if user_id != self.user_id:
                raise InvalidMessageError(
                    f"this memory belongs to user {self.user_id!r}; open one for {user_id!r} to forget it"
                )
            removed = yield Call(self._store.forget_user, (self.user_id,))
            yield from self.tier3.forget_steps(removed, user=True)
            if self.facts is not None:
                yield from self.facts.forget_user_steps()
            if self.vault is not None:
                yield Call(self.vault.erase_user)
            return len(removed)
        message_id = check_id(message_id, "message_id", InvalidMessageError)
        held = yield from self._vault_held(message_id=message_id)
        removed = yield Call(self._store.forget_message, (self.user_id, message_id))
        if removed:
            yield from self.tier3.forget_steps(removed)
            if self.facts is not None:
                yield from self.facts.forget_steps(removed)
            yield from self._vault_erase(held)
            yield from self.compactor.steps(self.summarizer, self.config)  # re-derive
        return len(removed)

    def rebuild_vectors(self) -> int:
        """Re-embed every Tier-3 document of this user (messages and facts) with this memory's
        embedder, replacing the vectors; returns how many. For a change of embedder (the store
        refuses a memory whose embedder is not the one recorded: ``EmbedderChangedError``).
        Other processes must not write this user's vectors with the old embedder meanwhile."""
        return run(self.tier3.vectors.rebuild_steps(replace=True))

    async def arebuild_vectors(self) -> int:
        return await arun(self.tier3.vectors.rebuild_steps(replace=True))

    def close(self) -> None:
        """Write what waits for Tier 3 and give this session's background work
        ``config.close_timeout`` seconds; what is left stays pending for the next process."""
        run(self._close_steps())

    async def aclose(self) -> None:
        await arun(self._close_steps())

    def _close_steps(self) -> Steps[None]:
        try:
            yield from self._index_steps()
        except TieredMemoryError:
            logger.exception("could not flush Tier 3 on close; the messages wait in the log")
        yield Call(self.resources.worker.wait, (self._job_key, self.config.close_timeout))


__all__ = ["MemoryStats", "RecallFilters", "TieredMemory"]
