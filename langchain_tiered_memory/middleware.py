"""``AgentMiddleware`` giving a LangChain 1.x ``create_agent`` agent the tiered memory.

The agent's graph state keeps every message; only what the *model* sees changes. Before each
model call the new state messages are written to the core memory and the request's messages are
replaced by the tiered view (the summary joins the system message, then the window). After the
model and at the end of the run the remaining messages are written. Nothing is written twice:
the middleware tracks stored message ids (and answered tool-call ids), and the core ignores ids it
already has. A tool call is written only together with all of its results.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.agents.middleware.types import ExtendedModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.config import get_config
from langgraph.runtime import Runtime, get_runtime

from tiered_memory import ConfigError, MemoryConfig, Message, Summarizer, TieredMemory

from .convert import from_core_messages, is_empty_message, to_core_message
from .history import MemoryCache
from .tools import create_recall_tool

__all__ = ["TieredMemoryMiddleware"]

logger = logging.getLogger("langchain_tiered_memory.middleware")

SUMMARY_ID_PREFIX = "summary:"


@dataclass
class _Tracked:
    """What one middleware knows is stored for one (user, session)."""

    loaded: bool = False
    ids: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # tool_call_ids with a stored result
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, stored: Sequence[Message]) -> None:
        with self.lock:
            if not self.loaded:
                self.ids.update(m.id for m in stored)
                self.answered.update(m.tool_call_id for m in stored if m.tool_call_id)
                self.loaded = True

    def is_stored(self, message: BaseMessage) -> bool:
        if isinstance(message, ToolMessage) and message.tool_call_id in self.answered:
            return True
        return bool(message.id) and message.id in self.ids

    def mark(self, messages: Sequence[Message]) -> None:
        with self.lock:
            self.ids.update(m.id for m in messages)
            self.answered.update(m.tool_call_id for m in messages if m.tool_call_id)


@dataclass(frozen=True)
class _Plan:
    """A sync step: LangChain messages to store (converted) and those the memory lacks."""

    store: list[Message]
    unstored: list[BaseMessage]


class TieredMemoryMiddleware(AgentMiddleware):
    """Tiered memory for ``create_agent``: the model sees summary + window; recall is a tool.

    Before each model call the model gets the system prompt with the summary appended, then the
    window. The current turn's user message and newest tool results are always shown, even when
    they alone exceed the window budget (the window would have evicted them). The graph state is
    never trimmed. The recall tool is in :attr:`tools` (``create_agent`` registers it).

    ``user_id`` and ``session_id`` are read at each step from the run: the runtime context
    (attribute or key ``user_id`` / ``session_id``), then ``config["configurable"]`` (``user_id``,
    ``session_id``, else ``thread_id`` as the session), then the constructor defaults. One core
    memory per ``(user_id, session_id)`` is created on first use and cached.

    Without a checkpointer, send only the new message on each ``invoke``: the memory holds the
    rest of the conversation. With one, the state keeps everything and the middleware skips what
    is already stored.

    Args:
        path: Directory of the embedded stores (``None``: the core default).
        config: Budgets and back-ends (``MemoryConfig``).
        summarizer: Core ``Summarizer`` or any LangChain ``BaseChatModel``.
        embeddings: Any LangChain ``Embeddings`` or core embedder.
        user_id: Default user when the run does not name one.
        session_id: Default session when the run has no ``session_id`` / ``thread_id``.
        memory_factory: Build memories yourself: ``memory_factory(user_id, session_id)``.
        recall_tool: Contribute the recall tool (``tools``). It is offered only to models that
            can bind tools: for one that cannot (``bind_tools`` not implemented, as LangChain's
            fake chat models), it is left out of the model request with a logged warning, so
            the agent runs as it would without the middleware. ``False`` adds no tool.
        recall_tool_name: Its name.
        recall_k: Default number of memories it returns.

    Example:
        ```python
        agent = create_agent(model, tools=[...], middleware=[TieredMemoryMiddleware(path="./mem")])
        agent.invoke(
            {"messages": [HumanMessage("hi")]},
            {"configurable": {"thread_id": "s1", "user_id": "kha"}},
        )
        ```
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        config: MemoryConfig | None = None,
        summarizer: Summarizer | BaseChatModel | None = None,
        embeddings: Any | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        memory_factory: Callable[[str, str], TieredMemory] | None = None,
        recall_tool: bool = True,
        recall_tool_name: str = "recall_memory",
        recall_k: int = 5,
    ) -> None:
        super().__init__()
        self.memories = MemoryCache(
            path=path,
            config=config,
            summarizer=summarizer,
            embeddings=embeddings,
            factory=memory_factory,
        )
        self.default_user_id = user_id
        self.default_session_id = session_id
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._tracked_lock = threading.Lock()
        self._tool_support: dict[type, bool] = {}
        self.tools = (
            [create_recall_tool(self.current_memory, name=recall_tool_name, k=recall_k)]
            if recall_tool
            else []
        )

    # --- which memory -----------------------------------------------------------------------

    def resolve_ids(self, runtime: Runtime[Any] | None = None) -> tuple[str, str]:
        """``(user_id, session_id)`` of the current run (context, configurable, defaults).

        Raises:
            ConfigError: The run names no user or no session and there is no default.
        """
        try:
            configurable: Mapping[str, Any] = get_config().get("configurable") or {}
        except RuntimeError:  # outside a runnable context
            configurable = {}
        if runtime is None:
            try:
                runtime = get_runtime()
            except (RuntimeError, KeyError):
                runtime = None
        context = getattr(runtime, "context", None)
        user_id = (
            _lookup(context, "user_id") or _lookup(configurable, "user_id") or self.default_user_id
        )
        session_id = (
            _lookup(context, "session_id")
            or _lookup(configurable, "session_id")
            or _lookup(configurable, "thread_id")
            or _lookup(getattr(runtime, "execution_info", None), "thread_id")
            or self.default_session_id
        )
        if not user_id:
            raise ConfigError(
                "TieredMemoryMiddleware needs a user: pass context={'user_id': ...} or "
                "config={'configurable': {'user_id': ...}}, or TieredMemoryMiddleware(user_id=...)"
            )
        if not session_id:
            raise ConfigError(
                "TieredMemoryMiddleware needs a session: pass config={'configurable': "
                "{'thread_id': ...}} (or 'session_id'), or TieredMemoryMiddleware(session_id=...)"
            )
        return user_id, session_id

    def memory_for(self, user_id: str, session_id: str) -> TieredMemory:
        """The cached core memory of ``(user_id, session_id)``."""
        return self.memories.get(user_id, session_id)

    def current_memory(self, runtime: Runtime[Any] | None = None) -> TieredMemory:
        """The core memory of the current run (see :meth:`resolve_ids`)."""
        return self.memory_for(*self.resolve_ids(runtime))

    def forget(self, user_id: str, session_id: str) -> None:
        """Forget which messages of a session are stored (after clearing its memory elsewhere)."""
        with self._tracked_lock:
            self._tracked.pop((user_id, session_id), None)

    def _tracker(self, memory: TieredMemory) -> _Tracked:
        key = (memory.user_id, memory.session_id)
        with self._tracked_lock:
            tracked = self._tracked.get(key)
            if tracked is None:
                tracked = self._tracked[key] = _Tracked()
            return tracked

    # --- the write plan (pure) --------------------------------------------------------------

    def _plan(self, tracked: _Tracked, messages: Sequence[AnyMessage]) -> _Plan:
        """Which messages to store now, keeping every tool call with all of its results.

        An assistant message whose calls are not all answered is held back with everything after
        it, until the results arrive; if a user or assistant message follows it instead (the
        calls were abandoned), it is stored with only its answered calls.
        """
        answered = set(tracked.answered)
        answered.update(m.tool_call_id for m in messages if isinstance(m, ToolMessage))
        store: list[Message] = []
        unstored: list[BaseMessage] = []
        held = False
        for index, message in enumerate(messages):
            if tracked.is_stored(message) or _is_summary(message):
                continue
            if held or not message.id or is_empty_message(message):
                unstored.append(message)
                continue
            if isinstance(message, AIMessage) and message.tool_calls:
                missing = [c for c in message.tool_calls if c.get("id") not in answered]
                if missing:
                    if not _followed_by_turn(messages, index):
                        held = True
                        unstored.append(message)
                        continue
                    kept = [c for c in message.tool_calls if c.get("id") in answered]
                    message = message.model_copy(update={"tool_calls": kept})
                    if is_empty_message(message):
                        continue
            store.append(to_core_message(message))
        return _Plan(store, unstored)

    # --- sync -------------------------------------------------------------------------------

    def _sync(self, memory: TieredMemory, messages: Sequence[AnyMessage]) -> list[BaseMessage]:
        tracked = self._tracker(memory)
        if not tracked.loaded:
            tracked.load(memory.history())
        plan = self._plan(tracked, messages)
        if plan.store:
            memory.add_messages(plan.store)
            tracked.mark(plan.store)
        return plan.unstored

    async def _async(
        self, memory: TieredMemory, messages: Sequence[AnyMessage]
    ) -> list[BaseMessage]:
        tracked = self._tracker(memory)
        if not tracked.loaded:
            tracked.load(await memory.ahistory())
        plan = self._plan(tracked, messages)
        if plan.store:
            await memory.aadd_messages(plan.store)
            tracked.mark(plan.store)
        return plan.unstored

    # --- model calls --------------------------------------------------------------------------

    def _offered_tools(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The request without our recall tool when its model cannot bind tools."""
        ours = {id(t) for t in self.tools}
        if not ours or not any(id(t) in ours for t in request.tools):
            return request
        model_type = type(request.model)
        supported = self._tool_support.get(model_type)
        if supported is None:
            supported = self._tool_support[model_type] = can_bind_tools(request.model)
            if not supported:
                logger.warning(
                    "%s cannot bind tools (bind_tools is not implemented): the recall tool is "
                    "not offered to it. Pass TieredMemoryMiddleware(recall_tool=False) to "
                    "silence this.",
                    model_type.__name__,
                )
        if supported:
            return request
        return request.override(tools=[t for t in request.tools if id(t) not in ours])

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """Store new messages, show the model the tiered view, give its answer an id."""
        request = self._offered_tools(request)
        memory = self.current_memory(request.runtime)
        unstored = self._sync(memory, request.messages)
        view = from_core_messages(memory.context_messages())
        return _with_ids(handler(_tiered_request(request, view, unstored)))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """Async :meth:`wrap_model_call` (the core's native async methods)."""
        request = self._offered_tools(request)
        memory = self.current_memory(request.runtime)
        unstored = await self._async(memory, request.messages)
        view = from_core_messages(await memory.acontext_messages())
        return _with_ids(await handler(_tiered_request(request, view, unstored)))

    def after_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Store the model's answer (a tool call waits for its results)."""
        self._sync(self.current_memory(runtime), state["messages"])
        return None

    async def aafter_model(
        self, state: AgentState[Any], runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async :meth:`after_model`."""
        await self._async(self.current_memory(runtime), state["messages"])
        return None

    def after_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Store whatever the run added last."""
        self._sync(self.current_memory(runtime), state["messages"])
        return None

    async def aafter_agent(
        self, state: AgentState[Any], runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async :meth:`after_agent`."""
        await self._async(self.current_memory(runtime), state["messages"])
        return None


# --- helpers ----------------------------------------------------------------------------------


def can_bind_tools(model: Any) -> bool:
    """Whether ``model.bind_tools`` works: overridden from ``BaseChatModel`` and not raising.

    LangChain's fake chat models inherit the base method, which raises ``NotImplementedError``.
    """
    if isinstance(model, BaseChatModel) and type(model).bind_tools is BaseChatModel.bind_tools:
        return False
    bind = getattr(model, "bind_tools", None)
    if not callable(bind):
        return False
    try:
        bind([])
    except NotImplementedError:
        return False
    except Exception:  # any other failure is the model's to report, with or without us
        return True
    return True


def _lookup(source: Any, key: str) -> str | None:
    if source is None:
        return None
    value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
    if value is None or value == "":
        return None
    return str(value)


def _is_summary(message: BaseMessage) -> bool:
    return isinstance(message, SystemMessage) and (message.id or "").startswith(SUMMARY_ID_PREFIX)


def _calls_tools(message: BaseMessage) -> bool:
    return isinstance(message, AIMessage) and bool(message.tool_calls)


def _followed_by_turn(messages: Sequence[AnyMessage], index: int) -> bool:
    """True when a user or assistant message comes after ``messages[index]``."""
    return any(not isinstance(m, ToolMessage) for m in messages[index + 1 :])


def _tiered_request(
    request: ModelRequest[Any], view: list[BaseMessage], unstored: list[BaseMessage]
) -> ModelRequest[Any]:
    """The request with the tiered view as messages and the summary in the system message."""
    summary: BaseMessage | None = None
    if view and _is_summary(view[0]):
        summary = view.pop(0)
    system = request.system_message
    if summary is not None:
        if system is None:
            system = SystemMessage(content=summary.text, id=summary.id)
        elif isinstance(system.content, str):
            system = system.model_copy(update={"content": f"{system.content}\n\n{summary.text}"})
        else:
            blocks = [*system.content, {"type": "text", "text": summary.text}]
            system = system.model_copy(update={"content": blocks})
    messages = _compose(request.messages, view, unstored)
    return request.override(messages=cast("list[AnyMessage]", messages), system_message=system)


def _compose(
    messages: Sequence[AnyMessage], window: list[BaseMessage], unstored: list[BaseMessage]
) -> list[BaseMessage]:
    """Window messages from before the current turn, then the current turn as the window shows it.

    The current turn starts at the last user message. Its user message and its newest tool unit
    (the last assistant message with tool calls, its results and anything after) are always
    shown, even when the window has evicted them for being larger than its budget: the model must
    see the question it answers and the results it asked for. Messages the memory does not hold
    yet (``unstored``) are shown where they are.
    """
    start = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)), 0
    )
    turn = list(messages[start:])
    turn_ids = {m.id for m in turn if m.id}
    shown = {m.id for m in window if m.id}
    held = {id(m) for m in unstored}
    newest_unit = next(
        (i for i in range(len(turn) - 1, -1, -1) if _calls_tools(turn[i])),
        len(turn),
    )
    current = [
        m
        for i, m in enumerate(turn)
        if (i == 0 and isinstance(m, HumanMessage))
        or i >= newest_unit
        or (m.id and m.id in shown)
        or id(m) in held
    ]
    in_turn = {id(m) for m in turn}
    older = [m for m in window if m.id not in turn_ids]
    older_held = [m for m in unstored if id(m) not in in_turn]
    return [*older, *older_held, *current]


def _with_ids(
    result: ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any],
) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
    """Give id-less answer messages an id now, so state and memory agree on it."""
    if isinstance(result, ExtendedModelResponse):
        messages: Sequence[BaseMessage] = result.model_response.result
    elif isinstance(result, ModelResponse):
        messages = result.result
    else:
        messages = [result]
    for message in messages:
        if not message.id:
            message.id = str(uuid.uuid4())
    return result
