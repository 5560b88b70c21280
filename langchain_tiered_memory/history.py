"""``BaseChatMessageHistory`` over a core :class:`tiered_memory.TieredMemory`.

``BaseChatMessageHistory`` and ``RunnableWithMessageHistory`` are deprecated since langchain-core
1.6.4 / 1.3.3 (removal planned for 2.0). This history is shipped for the many chains that still use
them; new agents should use :class:`~langchain_tiered_memory.TieredMemoryMiddleware` with
``langchain.agents.create_agent``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, RemoveMessage
from langchain_core.runnables import ConfigurableFieldSpec

from tiered_memory import ConfigError, MemoryConfig, Message, Summarizer, TieredMemory

from .convert import from_core_messages, is_empty_message, to_core_message
from .summarizer import LangChainSummarizer

__all__ = [
    "HISTORY_CONFIG_SPECS",
    "MemoryCache",
    "TieredChatMessageHistory",
    "history_factory",
]

logger = logging.getLogger("langchain_tiered_memory.history")

SUMMARY_ID_PREFIX = "summary:"

HISTORY_CONFIG_SPECS: tuple[ConfigurableFieldSpec, ...] = (
    ConfigurableFieldSpec(
        id="user_id",
        annotation=str,
        name="User ID",
        description="Owner of the memory; long-term recall never crosses users.",
        default="",
        is_shared=True,
    ),
    ConfigurableFieldSpec(
        id="session_id",
        annotation=str,
        name="Session ID",
        description="The conversation.",
        default="",
        is_shared=True,
    ),
)
"""``history_factory_config`` for ``RunnableWithMessageHistory``: ``user_id`` and ``session_id``."""


def as_summarizer(summarizer: Summarizer | BaseChatModel | None) -> Summarizer | None:
    """A core summarizer as is; a LangChain chat model wrapped in :class:`LangChainSummarizer`."""
    if isinstance(summarizer, BaseChatModel):
        return LangChainSummarizer(summarizer)
    return summarizer


class MemoryCache:
    """One core :class:`TieredMemory` per ``(user_id, session_id)``, created on first use.

    Args:
        path: Directory of the embedded stores (``None``: the core default).
        config: Budgets and back-ends.
        summarizer: Core summarizer or LangChain chat model (``None``: the core default).
        embeddings: Any LangChain ``Embeddings`` or core embedder (``None``: embedded MiniLM).
        factory: Build memories yourself instead: ``factory(user_id, session_id)``.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        config: MemoryConfig | None = None,
        summarizer: Summarizer | BaseChatModel | None = None,
        embeddings: Any | None = None,
        factory: Callable[[str, str], TieredMemory] | None = None,
    ) -> None:
        self.path = path
        self.config = config
        self.summarizer = as_summarizer(summarizer)
        self.embeddings = embeddings
        self.factory = factory
        self._memories: dict[tuple[str, str], TieredMemory] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str, session_id: str) -> TieredMemory:
        """The memory of ``(user_id, session_id)`` (created once, then cached)."""
        key = (user_id, session_id)
        with self._lock:
            memory = self._memories.get(key)
            if memory is None:
                memory = self._create(user_id, session_id)
                self._memories[key] = memory
            return memory

    def _create(self, user_id: str, session_id: str) -> TieredMemory:
        if self.factory is not None:
            return self.factory(user_id, session_id)
        kwargs: dict[str, Any] = {
            "config": self.config,
            "summarizer": self.summarizer,
            "embedder": self.embeddings,
        }
        if self.path is not None:
            kwargs["path"] = self.path
        return TieredMemory(session_id=session_id, user_id=user_id, **kwargs)

    def close(self) -> None:
        """Close and forget every cached memory."""
        with self._lock:
            memories, self._memories = list(self._memories.values()), {}
        for memory in memories:
            memory.close()


class TieredChatMessageHistory(BaseChatMessageHistory):
    """Chat history whose ``messages`` are the tiered view: summary + recent window.

    ``messages`` is ``[SystemMessage(summary)]`` (once there is one) followed by the window, not the
    whole conversation (``history_messages()`` has that). Writes go to the core memory, which
    evicts old messages into the summary and indexes everything for long-term recall.

    !!! warning "Deprecated LangChain API"
        ``BaseChatMessageHistory`` and ``RunnableWithMessageHistory`` are deprecated in
        langchain-core (removal in 2.0). Prefer :class:`TieredMemoryMiddleware` with
        ``create_agent``; this class is for existing chains.

    The view is a snapshot: taken at the first read after this object's last write and reused
    until its next write, ``clear()`` or ``refresh()``. ``RunnableWithMessageHistory`` (without a
    ``history_messages_key``) reads the history before the model runs and again afterwards to
    strip the history prefix by its length, so the view must not change in between (a summary
    arriving meanwhile would make it drop the new input). Create one history object per turn
    (:func:`history_factory` does, over a cached core memory) to see other writers' messages.

    Args:
        session_id: The conversation (ignored when ``memory`` is given).
        user_id: The owner; long-term recall never crosses users.
        path: Directory of the embedded stores (``None``: the core default ``./.tiered_memory``).
        config: Budgets and back-ends (``MemoryConfig``).
        summarizer: Core ``Summarizer`` or any LangChain ``BaseChatModel``
            (``None``: OpenAI with ``OPENAI_API_KEY``, else the offline extractive summarizer).
        embeddings: Any LangChain ``Embeddings`` (same methods as the core embedder) or a core
            embedder (``None``: the embedded MiniLM).
        memory: Wrap an existing core memory instead of creating one.

    Example:
        ```python
        history = TieredChatMessageHistory(session_id="s1", user_id="kha", path="./mem")
        history.add_messages([HumanMessage("My name is Kha")])
        history.messages  # [SystemMessage(summary)?, *window]
        ```
    """

    def __init__(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        config: MemoryConfig | None = None,
        summarizer: Summarizer | BaseChatModel | None = None,
        embeddings: Any | None = None,
        memory: TieredMemory | None = None,
    ) -> None:
        super().__init__()
        if memory is None:
            if not session_id or not user_id:
                raise ConfigError("TieredChatMessageHistory needs session_id and user_id or memory")
            memory = MemoryCache(
                path=path, config=config, summarizer=summarizer, embeddings=embeddings
            ).get(user_id, session_id)
        else:
            for name, given, actual in (
                ("session_id", session_id, memory.session_id),
                ("user_id", user_id, memory.user_id),
            ):
                if given is not None and given != actual:
                    raise ConfigError(f"{name}={given!r} does not match the memory's {actual!r}")
        self.memory = memory
        self._snapshot: list[BaseMessage] | None = None

    @property
    def session_id(self) -> str:
        """The conversation of this history."""
        return self.memory.session_id

    @property
    def user_id(self) -> str:
        """The owner of this history."""
        return self.memory.user_id

    # --- reads ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The tiered view: ``[SystemMessage(summary)]`` + window, as LangChain messages."""
        if self._snapshot is None:
            self._snapshot = from_core_messages(self.memory.context_messages())
        return list(self._snapshot)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async :attr:`messages` (the core's native ``acontext_messages``)."""
        if self._snapshot is None:
            self._snapshot = from_core_messages(await self.memory.acontext_messages())
        return list(self._snapshot)

    def refresh(self) -> None:
        """Drop the snapshot: the next read shows the memory as it is now."""
        self._snapshot = None

    @property
    def summary(self) -> str:
        """The current Tier-2 summary text (``""`` before the first compaction)."""
        return self.memory.summary

    def history_messages(self) -> list[BaseMessage]:
        """Every message of the session, in order (lossless; not what the model sees)."""
        return from_core_messages(self.memory.history())

    # --- writes -----------------------------------------------------------------------------

    def _to_store(self, messages: Sequence[BaseMessage]) -> list[Message]:
        batch: list[Message] = []
        for message in messages:
            if isinstance(message, RemoveMessage):
                continue
            if (message.id or "").startswith(SUMMARY_ID_PREFIX) and message.type == "system":
                continue  # the summary view message echoed back: not a message to store
            if is_empty_message(message):
                logger.warning("not storing an empty %s message", message.type)
                continue
            batch.append(to_core_message(message))
        return batch

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store messages in one batch (known ids are skipped by the core)."""
        batch = self._to_store(messages)
        self._snapshot = None
        if batch:
            self.memory.add_messages(batch)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async :meth:`add_messages` (the core's native ``aadd_messages``)."""
        batch = self._to_store(messages)
        self._snapshot = None
        if batch:
            await self.memory.aadd_messages(batch)

    def clear(self) -> None:
        """Delete the session: window, summary, log and its long-term vectors."""
        self._snapshot = None
        self.memory.clear()

    async def aclear(self) -> None:
        """Async :meth:`clear` (the core's native ``aclear``)."""
        self._snapshot = None
        await self.memory.aclear()

    def __repr__(self) -> str:
        return f"TieredChatMessageHistory(user_id={self.user_id!r}, session_id={self.session_id!r})"


def history_factory(
    *,
    path: str | os.PathLike[str] | None = None,
    config: MemoryConfig | None = None,
    summarizer: Summarizer | BaseChatModel | None = None,
    embeddings: Any | None = None,
    cache: MemoryCache | None = None,
) -> Callable[..., TieredChatMessageHistory]:
    """A ``get_session_history`` for ``RunnableWithMessageHistory``.

    It takes ``session_id`` and ``user_id`` keyword arguments (use
    ``history_factory_config=HISTORY_CONFIG_SPECS``), keeps one core memory per pair, and returns
    a new history object per call, i.e. per turn, so each turn gets its own stable view.

    Example:
        ```python
        chain = RunnableWithMessageHistory(
            prompt | model,
            history_factory(path="./mem", config=MemoryConfig(window_tokens=2000)),
            input_messages_key="input",
            history_messages_key="history",
            history_factory_config=list(HISTORY_CONFIG_SPECS),
        )
        chain.invoke({"input": "hi"}, {"configurable": {"user_id": "kha", "session_id": "s1"}})
        ```
    """
    memories = cache or MemoryCache(
        path=path, config=config, summarizer=summarizer, embeddings=embeddings
    )

    def get_session_history(*, session_id: str, user_id: str) -> TieredChatMessageHistory:
        if not session_id or not user_id:
            raise ConfigError(
                "pass both ids: config={'configurable': {'user_id': ..., 'session_id': ...}}"
            )
        return TieredChatMessageHistory(memory=memories.get(user_id, session_id))

    get_session_history.memories = memories  # type: ignore[attr-defined]
    return get_session_history
