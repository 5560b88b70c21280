"""Memory blocks for LlamaIndex's own ``Memory``: a running-summary tier and a recall tier.

``Memory`` keeps a FIFO of recent messages and hands what it flushes to its blocks
(``_aput``); before each LLM call it asks every block for content (``_aget``). Each block here
owns core :class:`~tiered_memory.TieredMemory` sessions, one per ``Memory`` session (the block
follows the ``session_id`` that ``Memory`` passes, unless it is given one).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr
from llama_index.core.llms.llm import LLM
from llama_index.core.memory.memory import BaseMemoryBlock
from typing_extensions import Self

from tiered_memory import (
    ExtractiveSummarizer,
    MemoryConfig,
    TieredMemory,
    TieredMemoryError,
    format_recall_hits,
    render_transcript,
    token_counter,
)

from .convert import to_core_messages
from .memory import DEFAULT_PATH, config_from, open_core
from .summarizer import LlamaIndexSummarizer

logger = logging.getLogger("tiered_memory")

DEFAULT_SESSION = "default"
SUMMARY_SESSION_SUFFIX = ":summary"


def _session_of(messages: list[ChatMessage], given: str | None) -> str:
    """The block's own session id, else the one ``Memory`` stamps on flushed messages."""
    if given:
        return given
    for message in messages:
        value = message.additional_kwargs.get("session_id")
        if isinstance(value, str) and value:
            return value
    return DEFAULT_SESSION


class _CoreSessions:
    """One lazily opened core per session id."""

    def __init__(self) -> None:
        self._cores: dict[str, TieredMemory] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str, opener: Any) -> TieredMemory:
        with self._lock:
            core = self._cores.get(session_id)
            if core is None:
                core = opener(session_id)
                self._cores[session_id] = core
            return core


class _CoreBlock(BaseMemoryBlock[str]):
    """Copies share the open cores; pickles carry the fields only (cores reopen when used)."""

    _sessions: _CoreSessions = PrivateAttr(default_factory=_CoreSessions)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self.model_copy()

    def __getstate__(self) -> dict[str, Any]:
        state = BaseModel.__getstate__(self)
        state["__dict__"] = {
            key: value
            for key, value in state["__dict__"].items()
            if key not in ("llm", "embed_model")
        }
        state["__pydantic_private__"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        fields = type(self).model_fields
        defaults = {
            key: info.get_default(call_default_factory=True)
            for key, info in fields.items()
            if key in ("llm", "embed_model")
        }
        state["__dict__"] = {**defaults, **state["__dict__"]}
        state["__pydantic_private__"] = {"_sessions": _CoreSessions()}
        BaseModel.__setstate__(self, state)


class TieredSummaryBlock(_CoreBlock):
    """A running summary of everything ``Memory`` flushed from its FIFO (Tier 2).

    Flushed messages are stored in a core session (``<session_id>:summary``, not indexed for
    recall) whose window is minimal, so they go straight to the core summarizer: the summary is
    extended, never rewritten, and persisted with the session. ``_aget`` returns the summary,
    followed by the few flushed messages not summarized yet, so nothing flushed goes missing.
    """

    name: str = Field(default="conversation_summary", description="The block name.")
    description: str | None = Field(
        default="Summary of the earlier part of this conversation.",
        description="A description of the memory block.",
    )
    user_id: str = Field(description="The owner of the conversation.")
    path: str = Field(default=DEFAULT_PATH, description="Directory of the embedded stores.")
    session_id: str | None = Field(
        default=None, description="A fixed session id; None follows the Memory's session."
    )
    summary_token_limit: int = Field(default=500, description="The summary budget in tokens.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Other tiered_memory.MemoryConfig fields."
    )
    llm: LLM | None = Field(
        default=None, exclude=True, description="Summarizer LLM; None is the core's default."
    )

    def core(self, session_id: str | None = None) -> TieredMemory:
        """The core session holding the summary of ``session_id``."""
        return self._sessions.get(_session_of([], self.session_id or session_id), self._open)

    def _open(self, session_id: str) -> TieredMemory:
        config = config_from(
            self.config,
            summary_tokens=self.summary_token_limit,
            window_tokens=16,  # the minimum: flushed messages go to the summary at once
            evict_to=0.01,
            index_long_term=False,
        )
        return open_core(
            session_id=session_id + SUMMARY_SESSION_SUFFIX,
            user_id=self.user_id,
            path=self.path,
            config=config,
            summarizer=LlamaIndexSummarizer(self.llm) if self.llm is not None else None,
        )

    async def _aput(self, messages: list[ChatMessage]) -> None:
        if messages:
            core = self.core(_session_of(messages, self.session_id))
            await core.aadd_messages(to_core_messages(messages))

    async def _aget(
        self,
        messages: list[ChatMessage] | None = None,
        session_id: str | None = None,
        **block_kwargs: Any,
    ) -> str:
        core = self.core(session_id)
        summary = await core.asummary_text()
        unsummarized = await asyncio.to_thread(lambda: [*core.pending(), *core.window()])
        parts = [summary.strip(), render_transcript(unsummarized).strip()]
        return "\n".join(part for part in parts if part)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Cut the summary text by about ``tokens_to_truncate`` tokens (None: drop it)."""
        counter = token_counter(config_from(self.config).model)
        keep = counter.count_text(content) - tokens_to_truncate
        if keep <= 0:
            return None
        return counter.truncate(content, keep) or None


class TieredRecallBlock(_CoreBlock):
    """Long-term recall (Tier 3): indexes what ``Memory`` flushes, searches on each turn.

    ``_aget`` searches every session of ``user_id`` (never another user's) with the latest user
    message as the query and returns :func:`tiered_memory.format_recall_hits` text, or nothing
    when there is no hit. Flushed messages are stored and embedded in a core session named after
    the ``Memory`` session (its Tier-2 summary uses the offline extractive summarizer: this block
    never calls an LLM). Hits already in the context, and the copies a ``TieredSummaryBlock``
    keeps in its ``<session_id>:summary`` sessions, are left out. A recall that fails (the vector
    store down, another embedder recorded for the user) is logged on the ``tiered_memory``
    logger and the block is empty for that turn: the chat goes on.
    """

    name: str = Field(default="recalled_memories", description="The block name.")
    description: str | None = Field(
        default="Possibly relevant messages from earlier conversations with this user.",
        description="A description of the memory block.",
    )
    user_id: str = Field(description="Whose long-term memory to index and search.")
    path: str = Field(default=DEFAULT_PATH, description="Directory of the embedded stores.")
    session_id: str | None = Field(
        default=None, description="A fixed session id; None follows the Memory's session."
    )
    k: int = Field(default=3, ge=1, le=50, description="Memories returned per turn.")
    min_score: float | None = Field(
        default=None, description="Leave out hits with a lower relevance score."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Other tiered_memory.MemoryConfig fields."
    )
    embed_model: Any | None = Field(
        default=None, exclude=True, description="Embedder; None is the core's embedded MiniLM."
    )

    def core(self, session_id: str | None = None) -> TieredMemory:
        """The core session that indexes the flushed messages of ``session_id``."""
        return self._sessions.get(_session_of([], self.session_id or session_id), self._open)

    def _open(self, session_id: str) -> TieredMemory:
        config: MemoryConfig = config_from(self.config, index_long_term=True)
        return open_core(
            session_id=session_id,
            user_id=self.user_id,
            path=self.path,
            config=config,
            summarizer=ExtractiveSummarizer(model=config.model),
            embedder=self.embed_model,
        )

    async def _aput(self, messages: list[ChatMessage]) -> None:
        if messages:
            core = self.core(_session_of(messages, self.session_id))
            await core.aadd_messages(to_core_messages(messages))

    async def _aget(
        self,
        messages: list[ChatMessage] | None = None,
        session_id: str | None = None,
        **block_kwargs: Any,
    ) -> str:
        query = _latest_user_text(messages or [])
        if not query:
            return ""
        core = self.core(session_id)
        # Fetch extra: hits already in the context, below min_score, or copies kept by a
        # TieredSummaryBlock are left out.
        try:
            hits = await core.arecall(query, k=min(1000, self.k * 3), exclude_window=False)
        except TieredMemoryError as exc:  # a failed recall must not fail the user's turn
            logger.error("recall for the %r memory block failed; left out this turn: %s",
                         self.name, exc)  # fmt: skip
            return ""
        in_context = {(m.content or "").strip() for m in messages or []}
        kept = [
            hit
            for hit in hits
            if hit.text.strip() not in in_context
            and not hit.session_id.endswith(SUMMARY_SESSION_SUFFIX)
            and (self.min_score is None or hit.score >= self.min_score)
        ]
        return format_recall_hits(kept[: self.k]) if kept else ""


def _latest_user_text(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == MessageRole.USER:
            text = "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock))
            return text.strip()
    return ""


__all__ = ["TieredRecallBlock", "TieredSummaryBlock"]
