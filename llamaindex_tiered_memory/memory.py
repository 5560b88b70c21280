"""``TieredChatMemory``: the tiered memory as a LlamaIndex ``BaseMemory``.

All memory logic is the core's (:class:`tiered_memory.TieredMemory`); this class converts
messages and honours the LlamaIndex contracts: ``get``/``put``/``set``/``reset`` and their async
twins, the ``initial_token_count`` budget of chat engines, and serialization inside an
``AgentWorkflow`` ``Context`` (the model dumps to its ids, path and config only, and reconnects
to the same stores when loaded).
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from llama_index.core.llms.llm import LLM
from llama_index.core.memory.types import BaseMemory

from tiered_memory import (
    SUMMARY_PREFIX,
    ConfigError,
    MemoryConfig,
    Message,
    TieredMemory,
    token_counter,
)

from .convert import from_core_messages, message_key, to_core, to_core_messages
from .summarizer import LlamaIndexSummarizer

DEFAULT_PATH = "./.tiered_memory"
_MASK = "***"

# --- process-wide reuse of live cores ------------------------------------------------------------
# A memory rebuilt from its serialized form (e.g. ``Context.from_dict``) has no summarizer LLM or
# embedder: those are live objects, never serialized. If a memory for the same store, user,
# session and config is alive in this process, the rebuilt one shares its core (and so its
# summarizer and embedder); otherwise it opens the stores with the core's defaults.

_live_lock = threading.Lock()
_open_lock = threading.RLock()
_live_cores: weakref.WeakValueDictionary[tuple[str, ...], TieredMemory] = (
    weakref.WeakValueDictionary()
)


def _core_key(
    path: str, user_id: str, session_id: str, config: Mapping[str, Any]
) -> tuple[str, ...]:
    return (str(Path(path).resolve()), user_id, session_id, repr(sorted(config.items())))


def open_core(
    *,
    session_id: str,
    user_id: str,
    path: str,
    config: MemoryConfig,
    summarizer: Any | None = None,
    embedder: Any | None = None,
) -> TieredMemory:
    """A core session; reuses a live one with the same identity when no component is given."""
    key = _core_key(path, user_id, session_id, public_config(config))
    with _live_lock:
        if summarizer is None and embedder is None:
            live = _live_cores.get(key)
            if live is not None:
                return live
        _check_restorable(public_config(config))
        core = TieredMemory(
            session_id=session_id,
            user_id=user_id,
            path=path,
            config=config,
            summarizer=summarizer,
            embedder=embedder,
        )
        _live_cores[key] = core
        return core


def public_config(config: MemoryConfig) -> dict[str, Any]:
    """``config`` as JSON data without secrets: no Chroma headers, vault key or database password."""
    data = dataclasses.asdict(config)
    data.pop("chroma_headers", None)
    data.pop("vault_key", None)
    url = data.get("session_store_url")
    if url:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password:
            data["session_store_url"] = parsed.render_as_string(hide_password=True)
    return data


def config_from(
    config: MemoryConfig | Mapping[str, Any] | None = None, **overrides: Any
) -> MemoryConfig:
    """A ``MemoryConfig`` from a config, a mapping of its fields, and non-None overrides."""
    if config is None:
        base = MemoryConfig()
    elif isinstance(config, MemoryConfig):
        base = config
    elif isinstance(config, Mapping):
        base = MemoryConfig().replace(**dict(config))
    else:
        raise ConfigError(
            f"config must be a MemoryConfig or a mapping, got {type(config).__name__}"
        )
    changes = {name: value for name, value in overrides.items() if value is not None}
    return base.replace(**changes) if changes else base


def _check_restorable(data: Mapping[str, Any]) -> None:
    """Refuse to open a store whose password was masked by :func:`public_config`."""
    url = data.get("session_store_url")
    if isinstance(url, str) and f":{_MASK}@" in url:
        raise ConfigError(
            "this memory was serialized without its database password; create it with "
            "TieredChatMemory.from_defaults(...) in this process before restoring it"
        )


class TieredChatMemory(BaseMemory):
    """Window + running summary + per-user long-term store, as a LlamaIndex memory.

    ``get()`` returns ``[system summary]`` (once there is one) plus the recent messages that fit
    ``token_limit`` (less ``initial_token_count``, which chat engines pass for their prefix
    messages). ``get_all()`` returns the whole session, losslessly. Tier 3 is never injected:
    give the agent :func:`~llamaindex_tiered_memory.create_recall_tool`.

    ``set(messages)`` never deletes: the store is an append-only log. It stores the messages of
    ``messages`` that are not stored yet and ignores the rest, so passing back what ``get()`` or
    ``get_all()`` returned (plus new messages), as chat engines and agents do, neither duplicates
    nor loses anything. Use ``reset()`` to delete the session.

    Serialized, the memory is its ``session_id``, ``user_id``, ``path`` and ``config`` (secrets
    such as Chroma headers or a database password are left out); the summarizer LLM and the
    embedder are live objects and are not serialized. A memory loaded in a process where the same
    memory is alive shares its core; elsewhere it reconnects with the core's defaults.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session_id: str = Field(description="The conversation id, unique within a user.")
    user_id: str = Field(description="The owner; long-term recall never crosses users.")
    path: str = Field(default=DEFAULT_PATH, description="Directory of the embedded stores.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="tiered_memory.MemoryConfig fields, without secrets."
    )
    llm: LLM | None = Field(default=None, exclude=True, description="Tier-2 summarizer LLM.")
    embed_model: Any | None = Field(default=None, exclude=True, description="Tier-3 embedder.")

    _core: TieredMemory | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "TieredChatMemory"

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        session_id: str,
        user_id: str,
        path: str | Path = DEFAULT_PATH,
        token_limit: int | None = None,
        summary_token_limit: int | None = None,
        llm: LLM | None = None,
        embed_model: Any | None = None,
        config: MemoryConfig | Mapping[str, Any] | None = None,
        chat_history: Sequence[ChatMessage] | None = None,
    ) -> TieredChatMemory:
        """Open (or create) the memory of ``(user_id, session_id)`` under ``path``.

        Args:
            token_limit: the window budget (``MemoryConfig.window_tokens``).
            summary_token_limit: the summary budget (``MemoryConfig.summary_tokens``).
            llm: any LlamaIndex LLM, used as the Tier-2 summarizer; None is the core's default
                (gpt-4o-mini with ``OPENAI_API_KEY``, else the offline extractive summarizer).
            embed_model: any LlamaIndex ``BaseEmbedding`` (or core ``Embedder``); None is the
                core's embedded MiniLM.
            config: a ``MemoryConfig`` or a mapping of its fields, for every other knob.
            chat_history: messages to store first (with ``set`` semantics).
        """
        full = config_from(config, window_tokens=token_limit, summary_tokens=summary_token_limit)
        path = str(Path(path).resolve())  # a restored memory must find the same store
        memory = cls(
            session_id=session_id,
            user_id=user_id,
            path=path,
            config=public_config(full),
            llm=llm,
            embed_model=embed_model,
        )
        summarizer = LlamaIndexSummarizer(llm) if llm is not None else None
        memory._core = open_core(
            session_id=session_id,
            user_id=user_id,
            path=path,
            config=full,
            summarizer=summarizer,
            embedder=embed_model,
        )
        if chat_history:
            memory.set(list(chat_history))
        return memory

    # --- the core ----------------------------------------------------------------------------

    @property
    def core(self) -> TieredMemory:
        """The core memory of this session (stats, recall, summary...)."""
        if self._core is None:
            with _open_lock:
                if self._core is None:
                    self._core = open_core(
                        session_id=self.session_id,
                        user_id=self.user_id,
                        path=self.path,
                        config=config_from(self.config),
                        summarizer=LlamaIndexSummarizer(self.llm) if self.llm else None,
                        embedder=self.embed_model,
                    )
        return self._core

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> TieredChatMemory:
        """A copy is another handle on the same session (the stores are not copied)."""
        return self.model_copy()

    def __getstate__(self) -> dict[str, Any]:
        """Pickles like it serializes: ids, path and config; the core reconnects when loaded."""
        state = BaseModel.__getstate__(self)
        state["__dict__"] = {
            key: value
            for key, value in state["__dict__"].items()
            if key not in ("llm", "embed_model")
        }
        state["__pydantic_private__"] = {"_core": None}
        return state

    @property
    def token_limit(self) -> int:
        """The window budget in tokens."""
        return self.core.config.window_tokens

    @property
    def tokenizer_fn(self) -> Callable[[str], list[int]]:
        """Token counting for chat engines (they size their prefix messages with it)."""
        counter = token_counter(self.core.config.model)
        return lambda text: [0] * counter.count_text(text)

    # --- reads -------------------------------------------------------------------------------

    def get(self, input: str | None = None, **kwargs: Any) -> list[ChatMessage]:
        """``[system summary] + window`` within ``token_limit - initial_token_count``.

        ``input`` (the coming user message of some engines) is accepted and not used: long-term
        memory is searched only through the recall tool.
        """
        return from_core_messages(self.core.context_messages(_reserve(kwargs)))

    async def aget(self, input: str | None = None, **kwargs: Any) -> list[ChatMessage]:
        return from_core_messages(await self.core.acontext_messages(_reserve(kwargs)))

    def get_all(self) -> list[ChatMessage]:
        """Every message of the session, in order (the summary is not a message)."""
        return from_core_messages(self.core.history())

    async def aget_all(self) -> list[ChatMessage]:
        return from_core_messages(await self.core.ahistory())

    # --- writes ------------------------------------------------------------------------------

    def put(self, message: ChatMessage) -> None:
        self.core.add_messages([to_core(message)])

    async def aput(self, message: ChatMessage) -> None:
        await self.core.aadd_messages([to_core(message)])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Store ``messages`` as one batch: a tool-calling turn stays whole."""
        self.core.add_messages(to_core_messages(messages))

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        await self.core.aadd_messages(to_core_messages(messages))

    def set(self, messages: list[ChatMessage]) -> None:
        """Store the messages of ``messages`` not stored yet (never deletes; see the class doc)."""
        new = unstored(self.core.history(), messages)
        if new:
            self.core.add_messages(new)

    async def aset(self, messages: list[ChatMessage]) -> None:
        new = unstored(await self.core.ahistory(), messages)
        if new:
            await self.core.aadd_messages(new)

    def reset(self) -> None:
        """Delete this session: window, summary, history and its long-term vectors."""
        self.core.clear()

    async def areset(self) -> None:
        await self.core.aclear()


def _reserve(kwargs: Mapping[str, Any]) -> int:
    value = kwargs.get("initial_token_count") or 0
    return max(0, int(value))


def is_summary_message(message: ChatMessage) -> bool:
    """Whether ``message`` is the summary message ``get()`` returns."""
    content = message.content or ""
    return message.role == MessageRole.SYSTEM and content.startswith(SUMMARY_PREFIX)


def unstored(history: Sequence[Message], messages: Sequence[ChatMessage]) -> list[Message]:
    """The messages of ``messages`` that ``history`` does not hold yet, in order, as core ones.

    ``messages`` is aligned on ``history`` by meaning (role, text, tool calls), from where its
    first stored message fits best (the longest run in a row), then in order: a message that
    matches a later stored one is already stored; any other is new. The summary message of
    ``get()`` is never stored.
    """
    incoming = [to_core(m) for m in messages if not is_summary_message(m)]
    if not incoming:
        return []
    keys = [message_key(m) for m in history]
    positions: dict[tuple[Any, ...], list[int]] = {}
    for index, key in enumerate(keys):
        positions.setdefault(key, []).append(index)
    wanted = [message_key(m) for m in incoming]
    first = next((j for j, key in enumerate(wanted) if key in positions), None)
    if first is None:
        return incoming

    def run_length(start: int) -> int:
        length = 0
        while (
            start + length < len(keys)
            and first + length < len(wanted)
            and keys[start + length] == wanted[first + length]
        ):
            length += 1
        return length

    # The best anchor: the longest run in a row; among equals, the most recent.
    cursor = max(positions[wanted[first]], key=lambda start: (run_length(start), start))
    new = list(incoming[:first])
    for message, key in zip(incoming[first:], wanted[first:], strict=True):
        found = positions.get(key, [])
        at = bisect.bisect_left(found, cursor)
        if at < len(found):
            cursor = found[at] + 1
        else:
            new.append(message)
    return new


__all__ = ["TieredChatMemory", "config_from", "is_summary_message", "open_core", "unstored"]
