"""``TieredSession``: the OpenAI Agents SDK ``Session`` protocol over a ``TieredMemory``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from tiered_memory import (
    ConfigError,
    InvalidMessageError,
    MemoryConfig,
    Message,
    Summarizer,
    TieredMemory,
)

from .convert import item_to_message, message_to_items, summary_item

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.memory.session_settings import SessionSettings

__all__ = ["TieredSession"]


class TieredSession:
    """An Agents SDK session whose history is tiered: ``Runner.run(agent, ..., session=...)``.

    ``get_items()`` is what the model is shown: the running summary (one ``system`` message
    item) then the window, within ``window_tokens`` + ``summary_tokens``; ``get_items(limit=n)``
    the last ``n`` of those. Every item added is kept losslessly in the store
    (:meth:`history_items`), searchable from any session of the user through recall.

    Args:
        session_id: The conversation.
        user_id: Whose memory it is (recall spans all of this user's sessions).
        path: Directory of the embedded stores.
        config: Budgets and back-ends (``MemoryConfig``).
        summarizer: Core ``Summarizer`` (default: the core's).
        embedder: Any embedder the core accepts.
        memory: An existing ``TieredMemory`` to use instead (then the other arguments but
            ``session_id``/``user_id``, which must match it, are not allowed).
        summary_role: ``"system"`` or ``"developer"``: the role of the summary item.

    Raises:
        ConfigError: Invalid ids, path or config; ``memory`` given with other memory arguments
            or with different ids.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        user_id: str,
        *,
        path: str | os.PathLike[str] = "./.tiered_memory",
        config: MemoryConfig | None = None,
        summarizer: Summarizer | None = None,
        embedder: Any | None = None,
        memory: TieredMemory | None = None,
        summary_role: Literal["system", "developer"] = "system",
    ) -> None:
        if summary_role not in ("system", "developer"):
            raise ConfigError(f"summary_role must be 'system' or 'developer', got {summary_role!r}")
        if memory is not None:
            if config is not None or summarizer is not None or embedder is not None:
                raise ConfigError(
                    "pass either memory= or config=/summarizer=/embedder=, not both: "
                    "the memory already has them"
                )
            if (memory.session_id, memory.user_id) != (session_id, user_id):
                raise ConfigError(
                    f"memory= is session {memory.session_id!r} of user {memory.user_id!r}, "
                    f"not session {session_id!r} of user {user_id!r}"
                )
        self.memory = memory or TieredMemory(
            session_id=session_id,
            user_id=user_id,
            path=path,
            config=config,
            summarizer=summarizer,
            embedder=embedder,
        )
        self.session_id = self.memory.session_id
        self.user_id = self.memory.user_id
        self.summary_role = summary_role

    @property
    def _keep_items(self) -> bool:
        """Whether raw items may be stored: not when even the raw log must be redacted."""
        return self.memory.config.secrets != "redact_all"

    def _items(self, messages: list[Message]) -> list[TResponseInputItem]:
        items: list[Any] = []
        for message in messages:
            if message.id.startswith("summary:"):
                items.append(summary_item(message, self.summary_role))
            else:
                items.extend(message_to_items(message))
        return items

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The summary item then the window (the last ``limit`` of them), oldest first.

        Raises:
            InvalidMessageError: ``limit`` is not None or an int >= 0.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidMessageError(f"limit must be None or an int, got {limit!r}")
        if limit is not None and limit < 0:
            raise InvalidMessageError(f"limit must be >= 0, got {limit}")
        items = self._items(await self.memory.acontext_messages())
        if limit is None:
            return items
        return items[len(items) - limit :] if limit else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Store ``items`` in order, all or none (an invalid item stores nothing).

        Raises:
            InvalidMessageError: An item is not JSON data, or ``items`` is not a list.
        """
        if not isinstance(items, list):
            raise InvalidMessageError(f"items must be a list, got {type(items).__name__}")
        messages = [item_to_message(item, keep_item=self._keep_items) for item in items]
        if messages:
            await self.memory.aadd_messages(messages)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest item from every tier and return it (None when empty)."""
        history = await self.memory.ahistory()
        if not history:
            return None
        newest = history[-1]
        await self.memory.aforget(message_id=newest.id)
        items: list[Any] = message_to_items(newest)
        if len(items) > 1:  # a message another adapter wrote: put back all but its last item
            await self.add_items(items[:-1])
        return items[-1] if items else None

    async def clear_session(self) -> None:
        """Delete this session everywhere: log, window, summary and its Tier-3 vectors."""
        await self.memory.aclear()

    async def history_items(self) -> list[TResponseInputItem]:
        """Every item of the session, in order, as it was added (lossless)."""
        return self._items(await self.memory.ahistory())

    def close(self) -> None:
        """Write what waits for Tier 3 (the stores stay open, shared per path)."""
        self.memory.close()
