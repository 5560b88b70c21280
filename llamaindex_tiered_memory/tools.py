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

from tiered_memory import TieredMemory, format_recall_hits
from tiered_memory.recall import RECALL_ARGUMENTS, RECALL_DESCRIPTION, parse_when

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


__all__ = ["RECALL_DESCRIPTION", "RecallInput", "create_recall_tool", "parse_when"]
