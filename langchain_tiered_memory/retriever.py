"""A LangChain ``BaseRetriever`` over Tier-3 recall: past messages as ``Document``s."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from tiered_memory import InvalidMessageError, RecallHit, TieredMemory
from tiered_memory.recall import parse_when

from .history import TieredChatMessageHistory
from .tools import memory_source

__all__ = ["TieredMemoryRetriever", "hit_to_document"]


def hit_to_document(hit: RecallHit) -> Document:
    """One recalled message as a ``Document``: its text, with provenance and score as metadata."""
    metadata: dict[str, Any] = {
        "score": hit.score,
        "role": hit.role,
        "session_id": hit.session_id,
        "user_id": hit.user_id,
        "message_id": hit.message_id,
        "created_at": hit.created_at.isoformat(),
    }
    if hit.name:
        metadata["name"] = hit.name
    return Document(page_content=hit.text, metadata=metadata, id=hit.message_id)


def _when(value: datetime | str | None, *, end_of_day: bool = False) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_when(value, end_of_day=end_of_day)
    raise InvalidMessageError(f"since/until must be a datetime or an ISO 8601 text, got {value!r}")


class TieredMemoryRetriever(BaseRetriever):
    """Retrieves a user's past messages (every session) ranked by the core's hybrid recall.

    Messages still in the memory's own window are left out (the model already sees them); pass
    the memory of a session that is not in use (e.g. a fresh ``session_id``) to search them all.
    ``invoke(query, k=3, since="2025-01-01", until=...)`` overrides the defaults for one call.

    Args:
        memory: ``TieredMemory``, ``TieredChatMessageHistory``, ``TieredMemoryMiddleware`` (the
            memory of the agent run) or a zero-argument callable returning a ``TieredMemory``.
        k: Documents per query.
        since: Only messages from this moment on (datetime or ISO 8601).
        until: Only messages up to this moment (a bare date includes its day).

    Example:
        ```python
        retriever = TieredMemoryRetriever(memory=TieredMemory("any", "kha", path="./mem"), k=4)
        retriever.invoke("what did I say about my stack?")
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any = Field(exclude=True)
    k: int = Field(default=5, ge=1, le=1000)
    since: datetime | str | None = None
    until: datetime | str | None = None

    @field_validator("memory", mode="before")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        try:
            return memory_source(value)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def resolve_memory(self) -> TieredMemory:
        """The core memory this retrieval searches."""
        source = self.memory
        if isinstance(source, TieredChatMessageHistory):
            return source.memory
        if isinstance(source, TieredMemory):
            return source
        memory = source()
        if not isinstance(memory, TieredMemory):
            raise TypeError(f"the memory resolver returned {type(memory).__name__}")
        return memory

    def _query(self, k: int | None, since: Any, until: Any) -> dict[str, Any]:
        return {
            "k": self.k if k is None else k,
            "since": _when(self.since if since is None else since),
            "until": _when(self.until if until is None else until, end_of_day=True),
        }

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> list[Document]:
        hits = self.resolve_memory().recall(query, **self._query(k, since, until))
        return [hit_to_document(hit) for hit in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> list[Document]:
        hits = await self.resolve_memory().arecall(query, **self._query(k, since, until))
        return [hit_to_document(hit) for hit in hits]
