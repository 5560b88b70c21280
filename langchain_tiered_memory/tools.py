"""The Tier-3 recall tool: the only way the model reads long-term memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tiered_memory import InvalidMessageError, TieredMemory, TieredMemoryError, format_recall_hits
from tiered_memory.recall import RECALL_ARGUMENTS, RECALL_DESCRIPTION, writes
from tiered_memory.recall import parse_when as parse_iso_when
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

from .history import TieredChatMessageHistory

if TYPE_CHECKING:
    from .middleware import TieredMemoryMiddleware

__all__ = [
    "RECALL_DESCRIPTION",
    "DeleteMemoryInput",
    "DeleteMemoryTool",
    "RecallInput",
    "RecallMemoryTool",
    "SaveMemoryInput",
    "SaveMemoryTool",
    "UpdateMemoryInput",
    "UpdateMemoryTool",
    "create_memory_tools",
    "create_recall_tool",
]


MemorySource: TypeAlias = (
    "TieredMemory | TieredChatMessageHistory | TieredMemoryMiddleware | Callable[[], TieredMemory]"
)

_SOURCE_HELP = (
    "pass a TieredMemory, a TieredChatMessageHistory, a TieredMemoryMiddleware (the tool then "
    "searches the memory of the agent run that calls it) or a zero-argument callable returning "
    "a TieredMemory"
)


def memory_source(source: Any) -> TieredMemory | TieredChatMessageHistory | Callable[[], Any]:
    """Check what a recall tool reads from at creation, so a wrong one fails here, not in a run.

    A middleware becomes its ``current_memory`` resolver.

    Raises:
        TypeError: ``source`` is none of the accepted kinds (the message lists them).
    """
    from .middleware import TieredMemoryMiddleware

    if isinstance(source, TieredMemoryMiddleware):
        return source.current_memory
    if isinstance(source, (TieredMemory, TieredChatMessageHistory)) or callable(source):
        return source
    raise TypeError(f"the recall tool cannot read from {type(source).__name__}: {_SOURCE_HELP}")


def resolve_source(source: Any) -> TieredMemory:
    """The core memory a tool over ``source`` (see :func:`memory_source`) uses now."""
    if isinstance(source, TieredChatMessageHistory):
        return source.memory
    if isinstance(source, TieredMemory):
        return source
    if callable(source):
        memory = source()
        if isinstance(memory, TieredMemory):
            return memory
        raise ToolException(
            f"the tool's resolver returned {type(memory).__name__}, not a TieredMemory"
        )
    raise TypeError(_SOURCE_HELP)


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


def parse_when(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """:func:`tiered_memory.recall.parse_when`, failing as a ToolException the model can read."""
    try:
        return parse_iso_when(value, end_of_day=end_of_day)
    except InvalidMessageError as exc:
        raise ToolException(str(exc)) from exc


class RecallMemoryTool(BaseTool):
    """Recall tool over one memory, a history, or a resolver called at each run.

    Prefer :func:`create_recall_tool`. ``memory`` may be a ``TieredMemory``, a
    ``TieredChatMessageHistory`` or a zero-argument callable returning the ``TieredMemory`` of the
    current run (the middleware uses one to follow ``user_id`` from the run config).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "recall_memory"
    description: str = RECALL_DESCRIPTION
    args_schema: type[BaseModel] = RecallInput
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True
    memory: Any = Field(exclude=True)
    """``TieredMemory``, ``TieredChatMessageHistory`` or ``Callable[[], TieredMemory]`` (a
    ``TieredMemoryMiddleware`` is turned into its ``current_memory`` resolver)."""
    k: int = 5
    """Default number of memories when the model does not ask for a number."""

    @field_validator("memory", mode="before")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        try:
            return memory_source(value)
        except TypeError as exc:  # pydantic reports ValueError / AssertionError only
            raise ValueError(str(exc)) from exc

    def resolve_memory(self) -> TieredMemory:
        """The core memory this call searches."""
        return resolve_source(self.memory)

    def _arguments(
        self, k: int | None, since: str | None, until: str | None
    ) -> tuple[int, dict[str, Any]]:
        window = {
            "since": parse_when(since),
            "until": parse_when(until, end_of_day=True),
        }
        return (k or self.k), window

    def _run(
        self,
        query: str,
        k: int | None = None,
        since: str | None = None,
        until: str | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> str:
        count, window = self._arguments(k, since, until)
        try:
            hits = self.resolve_memory().recall(query, k=count, **window)
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc
        return format_recall_hits(hits)

    async def _arun(
        self,
        query: str,
        k: int | None = None,
        since: str | None = None,
        until: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> str:
        count, window = self._arguments(k, since, until)
        try:
            hits = await self.resolve_memory().arecall(query, k=count, **window)
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc
        return format_recall_hits(hits)


def create_recall_tool(
    history_or_memory: MemorySource,
    name: str = "recall_memory",
    k: int = 5,
    description: str = RECALL_DESCRIPTION,
) -> BaseTool:
    """Build the recall tool for a chat history, a core memory, or a memory resolver.

    The tool searches only its user's long-term memory (every session of that user), leaves out
    what is still in the current window, and returns ``tiered_memory.format_recall_hits`` text.

    Args:
        history_or_memory: ``TieredChatMessageHistory``, ``TieredMemory``, a
            ``TieredMemoryMiddleware`` (searches the memory of the agent run calling the tool; the
            middleware already offers one named ``recall_memory`` unless ``recall_tool=False``),
            or a zero-argument callable returning the ``TieredMemory`` to search at call time.
        name: Tool name shown to the model.
        k: Default number of memories returned.
        description: What the model is told about when to call the tool.

    Returns:
        A ``BaseTool`` with arguments ``query``, ``k``, ``since`` and ``until``; sync and async.

    Raises:
        TypeError: ``history_or_memory`` is none of the above (checked now, not at call time).
        ValueError: ``k`` is below 1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    source = memory_source(history_or_memory)
    return RecallMemoryTool(name=name, description=description, memory=source, k=k)


# --- memory the agent writes --------------------------------------------------------------


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


class _MemoryWriteTool(BaseTool):
    """A tool that writes the long-term memory of one user (a memory source like recall's)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True
    memory: Any = Field(exclude=True)
    """``TieredMemory``, ``TieredChatMessageHistory`` or ``Callable[[], TieredMemory]`` (a
    ``TieredMemoryMiddleware`` is turned into its ``current_memory`` resolver)."""

    @field_validator("memory", mode="before")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        try:
            return memory_source(value)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def resolve_memory(self) -> TieredMemory:
        """The core memory (its user) this call writes."""
        return resolve_source(self.memory)


class SaveMemoryTool(_MemoryWriteTool):
    """``save_memory(text)``: save one fact of the user, recallable from every later session."""

    name: str = SAVE_MEMORY_TOOL_NAME
    description: str = SAVE_MEMORY_DESCRIPTION
    args_schema: type[BaseModel] = SaveMemoryInput

    def _run(self, text: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
        try:
            saved = writes.save_memory(self.resolve_memory(), text)
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc
        return format_memory_saved(saved.id, saved.text)

    async def _arun(
        self, text: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> str:
        try:
            saved = await writes.asave_memory(self.resolve_memory(), text)
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc
        return format_memory_saved(saved.id, saved.text)


class UpdateMemoryTool(_MemoryWriteTool):
    """``update_memory(id, text)``: replace a saved memory (a new id, linked to the old one)."""

    name: str = UPDATE_MEMORY_TOOL_NAME
    description: str = UPDATE_MEMORY_DESCRIPTION
    args_schema: type[BaseModel] = UpdateMemoryInput

    def _run(self, id: str, text: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
        try:
            saved = writes.update_memory(self.resolve_memory(), id, text)
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc
        return format_memory_saved(saved.id, saved.text, replaced=saved.replaces)

    async def _arun(
        self, id: str, text: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> str:
        try:
            saved = await writes.aupdate_memory(self.resolve_memory(), id, text)
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc
        return format_memory_saved(saved.id, saved.text, replaced=saved.replaces)


class DeleteMemoryTool(_MemoryWriteTool):
    """``delete_memory(id)``: delete a saved memory from every tier."""

    name: str = DELETE_MEMORY_TOOL_NAME
    description: str = DELETE_MEMORY_DESCRIPTION
    args_schema: type[BaseModel] = DeleteMemoryInput

    def _run(self, id: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
        try:
            return format_memory_deleted(writes.delete_memory(self.resolve_memory(), id))
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc

    async def _arun(
        self, id: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> str:
        try:
            return format_memory_deleted(await writes.adelete_memory(self.resolve_memory(), id))
        except TieredMemoryError as exc:
            raise ToolException(str(exc)) from exc


def create_memory_tools(history_or_memory: MemorySource) -> list[BaseTool]:
    """Build ``save_memory``, ``update_memory`` and ``delete_memory`` over one memory source.

    They write the long-term memory of the source's user only (the session ``memories`` of that
    user); what they save is recallable at once by the recall tool, from any session.

    Args:
        history_or_memory: the same kinds as :func:`create_recall_tool`.

    Returns:
        The three ``BaseTool``s, sync and async; bad arguments come back to the model as text.

    Raises:
        TypeError: ``history_or_memory`` is none of the accepted kinds.
    """
    source = memory_source(history_or_memory)
    return [
        SaveMemoryTool(memory=source),
        UpdateMemoryTool(memory=source),
        DeleteMemoryTool(memory=source),
    ]
