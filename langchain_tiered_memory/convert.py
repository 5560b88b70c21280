"""The one conversion between LangChain messages and :class:`tiered_memory.Message`.

LangChain -> core keeps everything the core has a field for (id, name, tool calls, tool-call id)
and puts the LangChain extras under ``Message.metadata["langchain"]``: ``additional_kwargs``,
``response_metadata``, ``usage_metadata``, ``invalid_tool_calls``, a tool message's ``status`` and
``artifact``, the message class when the role alone does not say it (``ChatMessage``,
``FunctionMessage``), and the raw ``content`` whenever the core text differs from it (content
blocks). core -> LangChain reads them back, so a LangChain message survives the round trip.
Messages written by other adapters (no ``"langchain"`` metadata) convert to the plain classes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import ToolCall as LCToolCall
from langchain_core.messages.tool import InvalidToolCall
from pydantic import BaseModel

from tiered_memory import InvalidMessageError, Message, ToolCall

__all__ = [
    "METADATA_KEY",
    "from_core_message",
    "from_core_messages",
    "is_empty_message",
    "to_core_message",
    "to_core_messages",
]

logger = logging.getLogger("langchain_tiered_memory.convert")

METADATA_KEY = "langchain"
"""Key of ``Message.metadata`` holding the LangChain extras of a message."""

_CHAT_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
}


# --- LangChain -> core ------------------------------------------------------------------------


def to_core_message(message: BaseMessage, *, id: str | None = None) -> Message:
    """Convert one LangChain message to a core :class:`~tiered_memory.Message`.

    Args:
        message: Any LangChain message; chunks (``AIMessageChunk`` ...) convert like their
            full classes.
        id: Id to use when ``message.id`` is unset (default: a new uuid).

    Returns:
        The core message, with the LangChain extras in ``metadata["langchain"]``.

    Raises:
        InvalidMessageError: ``RemoveMessage``, an unknown ``ChatMessage`` role, or a message the
            core rejects (e.g. empty content without tool calls).
    """
    if isinstance(message, RemoveMessage):
        raise InvalidMessageError("a RemoveMessage is a state instruction, not a message to store")
    extras: dict[str, Any] = {}
    name = message.name or None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    message_id = message.id or id
    if isinstance(message, AIMessage):
        role = "assistant"
        tool_calls = tuple(
            _to_core_tool_call(call, message_id, index)
            for index, call in enumerate(message.tool_calls)
        )
        if message.invalid_tool_calls:
            extras["invalid_tool_calls"] = _jsonable(list(message.invalid_tool_calls))
        if message.usage_metadata:
            extras["usage_metadata"] = _jsonable(dict(message.usage_metadata))
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, ToolMessage):
        role = "tool"
        tool_call_id = message.tool_call_id
        if message.status != "success":
            extras["status"] = message.status
        if message.artifact is not None:
            artifact = _jsonable(message.artifact, what="ToolMessage.artifact")
            if artifact is not None:
                extras["artifact"] = artifact
    elif isinstance(message, FunctionMessage):
        # Legacy OpenAI function result: the function name doubles as the call id.
        role = "tool"
        tool_call_id = message.name
        extras["type"] = "function"
    elif isinstance(message, ChatMessage):
        mapped = _CHAT_ROLES.get(message.role.lower())
        if mapped is None:
            raise InvalidMessageError(
                f"ChatMessage role {message.role!r} has no core equivalent "
                f"(expected one of {sorted(_CHAT_ROLES)})"
            )
        role = mapped
        extras["type"] = "chat"
        extras["role"] = message.role
        if role == "tool":
            raise InvalidMessageError("a ChatMessage cannot carry a tool result: use ToolMessage")
    else:
        raise InvalidMessageError(f"unsupported LangChain message type {type(message).__name__}")

    text = str(message.text)
    if not text.strip() and not tool_calls:
        text = _placeholder(message)
    if not isinstance(message.content, str) or text != message.content:
        extras["content"] = _jsonable(message.content, what="content")
    if message.additional_kwargs:
        extras["additional_kwargs"] = _jsonable(message.additional_kwargs, what="additional_kwargs")
    if message.response_metadata:
        extras["response_metadata"] = _jsonable(message.response_metadata, what="response_metadata")
    kwargs: dict[str, Any] = {
        "role": role,
        "content": text,
        "name": name,
        "tool_calls": tool_calls,
        "tool_call_id": tool_call_id,
        "metadata": {METADATA_KEY: extras} if extras else {},
    }
    if message_id:
        kwargs["id"] = message_id
    return Message(**kwargs)


def to_core_messages(messages: Iterable[BaseMessage]) -> list[Message]:
    """Convert LangChain messages in order (see :func:`to_core_message`)."""
    return [to_core_message(message) for message in messages]


def is_empty_message(message: BaseMessage) -> bool:
    """True for a message with nothing to store: no text, no content blocks, no tool calls."""
    if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
        return False
    content = message.content
    if isinstance(content, str):
        return not content.strip()
    return not any(
        (isinstance(block, str) and block.strip()) or isinstance(block, dict) for block in content
    )


def _to_core_tool_call(call: LCToolCall, message_id: str | None, index: int) -> ToolCall:
    call_id = call.get("id") or f"call_{message_id or 'noid'}_{index}"
    arguments = json.dumps(_jsonable(call.get("args") or {}), ensure_ascii=False)
    return ToolCall(id=call_id, name=call["name"], arguments=arguments)


def _placeholder(message: BaseMessage) -> str:
    """Core text for a message without text: its block types (``[image]``) or empty."""
    content = message.content
    kinds: list[str] = []
    if isinstance(message, AIMessage) and message.invalid_tool_calls:
        kinds.append("[invalid tool call]")
    if isinstance(content, str):
        return " ".join(kinds) or content
    for block in content:
        if isinstance(block, dict):
            kind = str(block.get("type") or "block")
            if kind in ("text", "tool_call", "tool_call_chunk"):
                continue
            label = f"[{kind}]"
            if label not in kinds:
                kinds.append(label)
    return " ".join(kinds)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonable(value: Any, *, what: str = "value") -> Any:
    """``value`` as JSON data; top-level entries that cannot be serialized are dropped."""
    try:
        return json.loads(json.dumps(value, default=_json_default))
    except (TypeError, ValueError) as exc:
        if isinstance(value, Mapping):
            kept: dict[str, Any] = {}
            for key, item in value.items():
                try:
                    kept[str(key)] = json.loads(json.dumps(item, default=_json_default))
                except (TypeError, ValueError):
                    logger.warning("dropping %s[%r]: not JSON-serializable", what, key)
            return kept
        logger.warning("dropping %s: not JSON-serializable (%s)", what, exc)
        return None


# --- core -> LangChain ------------------------------------------------------------------------


def from_core_message(message: Message) -> BaseMessage:
    """Convert one core message to the LangChain message it was made from (or the plain class).

    Args:
        message: A core message (from any adapter).

    Returns:
        ``HumanMessage``, ``AIMessage``, ``SystemMessage``, ``ToolMessage``, or ``ChatMessage`` /
        ``FunctionMessage`` when it was one.
    """
    extras: Mapping[str, Any] = message.metadata.get(METADATA_KEY) or {}
    if not isinstance(extras, Mapping):
        extras = {}
    content: Any = extras.get("content", message.content)
    if not isinstance(content, (str, list)):
        content = message.content
    common: dict[str, Any] = {
        "content": content,
        "id": message.id,
        "additional_kwargs": dict(extras.get("additional_kwargs") or {}),
        "response_metadata": dict(extras.get("response_metadata") or {}),
    }
    if message.name:
        common["name"] = message.name
    kind = extras.get("type")
    if kind == "chat" and message.role != "tool":
        return ChatMessage(role=str(extras.get("role") or message.role), **common)
    if message.role == "user":
        return HumanMessage(**common)
    if message.role == "system":
        return SystemMessage(**common)
    if message.role == "tool":
        if kind == "function" and message.name:
            return FunctionMessage(**common)
        tool_kwargs: dict[str, Any] = {"tool_call_id": message.tool_call_id or ""}
        if extras.get("status") in ("success", "error"):
            tool_kwargs["status"] = extras["status"]
        if "artifact" in extras:
            tool_kwargs["artifact"] = extras["artifact"]
        return ToolMessage(**common, **tool_kwargs)
    tool_calls: list[LCToolCall] = []
    invalid: list[InvalidToolCall] = [
        InvalidToolCall(
            type="invalid_tool_call",
            name=call.get("name"),
            args=call.get("args"),
            id=call.get("id"),
            error=call.get("error"),
        )
        for call in extras.get("invalid_tool_calls") or ()
        if isinstance(call, Mapping)
    ]
    for call in message.tool_calls:
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            args = None
        if isinstance(args, dict):
            tool_calls.append(LCToolCall(name=call.name, args=args, id=call.id, type="tool_call"))
        else:
            invalid.append(
                InvalidToolCall(
                    type="invalid_tool_call",
                    name=call.name,
                    args=call.arguments,
                    id=call.id,
                    error="arguments are not a JSON object",
                )
            )
    ai_kwargs: dict[str, Any] = {"tool_calls": tool_calls, "invalid_tool_calls": invalid}
    if extras.get("usage_metadata"):
        ai_kwargs["usage_metadata"] = extras["usage_metadata"]
    return AIMessage(**common, **ai_kwargs)


def from_core_messages(messages: Sequence[Message]) -> list[BaseMessage]:
    """Convert core messages in order (see :func:`from_core_message`)."""
    return [from_core_message(message) for message in messages]
