"""The Tier-3 recall tool for LlamaIndex agents: the only way the model reads long-term memory.

Same arguments, semantics and output as the LangChain adapter's tool: it searches every session
of the memory's user (never another user's), leaves out what is still in the current window, and
returns :func:`tiered_memory.format_recall_hits` text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llama_index.core.bridge.pydantic import BaseModel, Field
from llama_index.core.tools import FunctionTool

from tiered_memory import TieredMemory, TieredMemoryError, format_recall_hits
from tiered_memory.recall import RECALL_ARGUMENTS, RECALL_DESCRIPTION, parse_when, writes
from tiered_memory.recall.tool import (
    DELETE_MEMORY_DESCRIPTION,
    DELETE_MEMORY_TOOL_NAME,
    MEMORY_WRITE_ARGUMENTS,
    SAVE_MEMORY_DESCRIPTION,
    SAVE_MEMORY_TOOL_NAME,
    UPDATE_MEMORY_DESCRIPTION,
    UPDATE_MEMORY_TOOL_NAME,
    format_memory_deleted,
    format_memory_saved,
)

from .memory import TieredChatMemory

MemorySource = TieredChatMemory | TieredMemory | Callable[[], TieredMemory]


class RecallInput(BaseModel):
    """Arguments of the recall tool."""

    query: str = Field(description=RECALL_ARGUMENTS["query"])
    k: int | None = Field(default=None, ge=1, le=50, description=RECALL_ARGUMENTS["k"])
    since: str | None = Field(
        default=None,
        description=RECALL_ARGUMENTS["since"],
    )
    until: str | None = Field(
        default=None,
        description=RECALL_ARGUMENTS["until"],
    )


def resolve_core(source: MemorySource) -> TieredMemory:
    """The core memory a recall searches."""
    if isinstance(source, TieredChatMemory):
        return source.core
    if isinstance(source, TieredMemory):
        return source
    if callable(source):
        return source()
    raise TypeError(
        "memory must be a TieredChatMemory, a TieredMemory or a callable returning a TieredMemory"
    )


def create_recall_tool(
    memory: MemorySource,
    name: str = "recall_memory",
    k: int = 5,
    description: str = RECALL_DESCRIPTION,
) -> FunctionTool:
    """Build the recall tool over ``memory`` (sync ``fn`` and native ``async_fn``).

    Args:
        memory: a ``TieredChatMemory``, a core ``TieredMemory``, or a zero-argument callable
            returning the ``TieredMemory`` to search at call time.
        name: tool name shown to the model.
        k: default number of memories returned.
        description: what the model is told about when to call the tool.

    Returns:
        A ``FunctionTool`` with arguments ``query``, ``k``, ``since`` and ``until``.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    default_k = k

    def arguments(
        count: int | None, since: str | None, until: str | None
    ) -> tuple[int, dict[str, Any]]:
        window = {"since": parse_when(since), "until": parse_when(until, end_of_day=True)}
        return (count or default_k), window

    def recall_memory(
        query: str, k: int | None = None, since: str | None = None, until: str | None = None
    ) -> str:
        count, window = arguments(k, since, until)
        return format_recall_hits(resolve_core(memory).recall(query, k=count, **window))

    async def arecall_memory(
        query: str, k: int | None = None, since: str | None = None, until: str | None = None
    ) -> str:
        count, window = arguments(k, since, until)
        return format_recall_hits(await resolve_core(memory).arecall(query, k=count, **window))

    return FunctionTool.from_defaults(
        fn=recall_memory,
        async_fn=arecall_memory,
        name=name,
        description=description,
        fn_schema=RecallInput,
    )


class SaveMemoryInput(BaseModel):
    """Arguments of the save_memory tool."""

    text: str = Field(description=MEMORY_WRITE_ARGUMENTS["text"])


class UpdateMemoryInput(BaseModel):
    """Arguments of the update_memory tool."""

    id: str = Field(description=MEMORY_WRITE_ARGUMENTS["id"])
    text: str = Field(description=MEMORY_WRITE_ARGUMENTS["text"])


class DeleteMemoryInput(BaseModel):
    """Arguments of the delete_memory tool."""

    id: str = Field(description=MEMORY_WRITE_ARGUMENTS["id"])


def _as_answer(error: TieredMemoryError) -> str:
    """A write the core refused, as text the model can read and act on."""
    return f"Error: {error}"


def create_memory_tools(memory: MemorySource) -> list[FunctionTool]:
    """Build ``save_memory``, ``update_memory`` and ``delete_memory`` over ``memory``.

    They write the long-term memory of that memory's user only (its session ``memories``); what
    they save is recallable at once by the recall tool, from any session. A refused write (an
    empty text, an unknown id) comes back to the model as an ``Error: ...`` answer.

    Args:
        memory: a ``TieredChatMemory``, a core ``TieredMemory``, or a zero-argument callable
            returning the ``TieredMemory`` to write at call time.

    Returns:
        Three ``FunctionTool``s with sync ``fn`` and native ``async_fn``.

    Raises:
        TypeError: ``memory`` is none of the accepted kinds.
    """
    if not isinstance(memory, (TieredChatMemory, TieredMemory)) and not callable(memory):
        raise TypeError(
            "memory must be a TieredChatMemory, a TieredMemory or a callable returning one"
        )

    def save_memory(text: str) -> str:
        try:
            saved = writes.save_memory(resolve_core(memory), text)
        except TieredMemoryError as exc:
            return _as_answer(exc)
        return format_memory_saved(saved.id, saved.text)

    async def asave_memory(text: str) -> str:
        try:
            saved = await writes.asave_memory(resolve_core(memory), text)
        except TieredMemoryError as exc:
            return _as_answer(exc)
        return format_memory_saved(saved.id, saved.text)

    def update_memory(id: str, text: str) -> str:
        try:
            saved = writes.update_memory(resolve_core(memory), id, text)
        except TieredMemoryError as exc:
            return _as_answer(exc)
        return format_memory_saved(saved.id, saved.text, replaced=saved.replaces)

    async def aupdate_memory(id: str, text: str) -> str:
        try:
            saved = await writes.aupdate_memory(resolve_core(memory), id, text)
        except TieredMemoryError as exc:
            return _as_answer(exc)
        return format_memory_saved(saved.id, saved.text, replaced=saved.replaces)

    def delete_memory(id: str) -> str:
        try:
            return format_memory_deleted(writes.delete_memory(resolve_core(memory), id))
        except TieredMemoryError as exc:
            return _as_answer(exc)

    async def adelete_memory(id: str) -> str:
        try:
            return format_memory_deleted(await writes.adelete_memory(resolve_core(memory), id))
        except TieredMemoryError as exc:
            return _as_answer(exc)

    return [
        FunctionTool.from_defaults(
            fn=save_memory, async_fn=asave_memory, name=SAVE_MEMORY_TOOL_NAME,
            description=SAVE_MEMORY_DESCRIPTION, fn_schema=SaveMemoryInput,
        ),
        FunctionTool.from_defaults(
            fn=update_memory, async_fn=aupdate_memory, name=UPDATE_MEMORY_TOOL_NAME,
            description=UPDATE_MEMORY_DESCRIPTION, fn_schema=UpdateMemoryInput,
        ),
        FunctionTool.from_defaults(
            fn=delete_memory, async_fn=adelete_memory, name=DELETE_MEMORY_TOOL_NAME,
            description=DELETE_MEMORY_DESCRIPTION, fn_schema=DeleteMemoryInput,
        ),
    ]  # fmt: skip


__all__ = [
    "RECALL_DESCRIPTION",
    "DeleteMemoryInput",
    "RecallInput",
    "SaveMemoryInput",
    "UpdateMemoryInput",
    "create_memory_tools",
    "create_recall_tool",
    "parse_when",
]
