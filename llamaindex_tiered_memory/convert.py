"""The one conversion between LlamaIndex ``ChatMessage`` and ``tiered_memory.Message``.

Shared meaning lives in the core fields (role, content, name, tool_calls, tool_call_id) so the
other adapters read it; LlamaIndex-only detail (the exact role, ``additional_kwargs``, content
blocks that text cannot express) is kept under ``Message.metadata["llama_index"]`` and restored
on the way back, so a message stored through this adapter comes back equal to what was put.

``ChatMessage`` has no id field, so core ids are not carried onto ``ChatMessage`` objects (putting
them in ``additional_kwargs`` would send them to the model provider); ``TieredChatMemory.set``
aligns messages by meaning instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)

from tiered_memory import Message, ToolCall

#: Key of ``Message.metadata`` that holds what only LlamaIndex needs.
METADATA_KEY = "llama_index"

_CORE_ROLE: dict[MessageRole, str] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.CHATBOT: "assistant",  # Cohere's name for the assistant
    MessageRole.MODEL: "assistant",  # Gemini's name for the assistant
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "tool",  # legacy OpenAI function result
}


def core_role(role: MessageRole | str) -> str:
    """The core role of a LlamaIndex role (e.g. ``developer`` -> ``system``)."""
    return _CORE_ROLE[MessageRole(role)]


def to_core(message: ChatMessage, *, id: str | None = None) -> Message:
    """A LlamaIndex ``ChatMessage`` as a core ``Message`` (validated; raises InvalidMessageError).

    Text blocks become ``content`` (joined like ``ChatMessage.content``); ``ToolCallBlock``s, or
    OpenAI-style ``additional_kwargs["tool_calls"]`` when there are none, become ``tool_calls``;
    ``additional_kwargs["tool_call_id"]`` becomes ``tool_call_id`` for tool results. A message
    with no text (an image, an empty reply) gets a short placeholder content such as ``[image]``,
    since the core stores text; its real blocks are kept in metadata.
    """
    role = core_role(message.role)
    kwargs = _json_kwargs(message)
    calls = _tool_calls(message, kwargs) if role == "assistant" else ()
    texts = [block.text for block in message.blocks if isinstance(block, TextBlock)]
    content = "\n".join(texts)
    if not content.strip() and not calls:
        content = _placeholder(message)
    tool_call_id: str | None = None
    extra: dict[str, Any] = {}
    if role == "tool":
        tool_call_id = _str(kwargs.get("tool_call_id")) or _str(kwargs.get("name"))
        if tool_call_id is None:
            # A tool result with no id (some agents omit it): the core requires one.
            tool_call_id = _synthetic_id("result", content)
            extra["synthetic_tool_call_id"] = True
    fields: dict[str, Any] = {
        "role": role,
        "content": content,
        "name": _str(kwargs.get("name")),
        "tool_calls": calls,
        "tool_call_id": tool_call_id,
    }
    if id:
        fields["id"] = id
    core = Message(**fields)
    if message.role.value != role:
        extra["role"] = message.role.value
    if kwargs:
        extra["additional_kwargs"] = kwargs
    # Keep the blocks when the core fields cannot rebuild them exactly.
    blocks = [block.model_dump(mode="json") for block in message.blocks]
    if blocks != [block.model_dump(mode="json") for block in _blocks_of(core)]:
        extra["blocks"] = blocks
    return replace(core, metadata={METADATA_KEY: extra}) if extra else core


def from_core(message: Message) -> ChatMessage:
    """A core ``Message`` as a LlamaIndex ``ChatMessage`` (inverse of :func:`to_core`).

    Messages written by another adapter (no LlamaIndex metadata) get the native LlamaIndex
    shape: ``TextBlock`` + ``ToolCallBlock``s, and ``tool_call_id`` (tool results) or ``name``
    (other roles) in ``additional_kwargs``.
    """
    extra = message.metadata.get(METADATA_KEY) or {}
    role = MessageRole(extra.get("role") or message.role)
    if "blocks" in extra:
        blocks: list[Any] = ChatMessage.model_validate({"blocks": extra["blocks"]}).blocks
    else:
        blocks = _blocks_of(message)
    if extra:  # written through this adapter: its additional_kwargs exactly
        kwargs = dict(extra.get("additional_kwargs") or {})
    else:  # plain, or written by another adapter: the native LlamaIndex places
        kwargs = {}
        if message.role == "tool":
            # Only the id: OpenAI's tool messages take no ``name``.
            kwargs["tool_call_id"] = message.tool_call_id
        elif message.name:
            kwargs["name"] = message.name
    return ChatMessage(role=role, blocks=blocks, additional_kwargs=kwargs)


def to_core_messages(messages: Iterable[ChatMessage]) -> list[Message]:
    """:func:`to_core` over a list."""
    return [to_core(message) for message in messages]


def from_core_messages(messages: Iterable[Message]) -> list[ChatMessage]:
    """:func:`from_core` over a list."""
    return [from_core(message) for message in messages]


def message_key(message: Message) -> tuple[Any, ...]:
    """What identifies a message's meaning, for aligning a list against stored history.

    Ids, timestamps and metadata are left out: LlamaIndex messages carry no id, and LlamaIndex
    stamps ``additional_kwargs`` (e.g. ``session_id``) on messages it already handed over.
    """
    calls = tuple((call.id, call.name, call.arguments) for call in message.tool_calls)
    return (message.role, message.content, calls, message.tool_call_id)


# --- helpers ---------------------------------------------------------------------------------


def _synthetic_id(*parts: Any) -> str:
    """A stable id for a tool call or result that came without one (same input, same id)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]
    return f"call_{digest}"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_kwargs(message: ChatMessage) -> dict[str, Any]:
    """``additional_kwargs`` as JSON data (pydantic objects such as OpenAI tool calls dumped)."""
    if not message.additional_kwargs:
        return {}
    dumped = message.model_dump(mode="json", include={"additional_kwargs"})
    data = dumped.get("additional_kwargs") or {}
    # Anything pydantic could not turn into JSON becomes its string form.
    result: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return result


def _tool_calls(message: ChatMessage, kwargs: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            arguments = _arguments(block.tool_kwargs)
            calls.append(
                ToolCall(
                    id=block.tool_call_id or _synthetic_id(block.tool_name, arguments, len(calls)),
                    name=block.tool_name,
                    arguments=arguments,
                )
            )
    if calls:
        return tuple(calls)
    raw = kwargs.get("tool_calls")
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for item in raw:
            call = _tool_call_from_kwargs(item)
            if call is not None:
                calls.append(call)
    return tuple(calls)


def _tool_call_from_kwargs(item: Any) -> ToolCall | None:
    """An entry of ``additional_kwargs["tool_calls"]``: OpenAI shape or a ``ToolSelection`` dump."""
    if not isinstance(item, Mapping):
        return None
    if "tool_name" in item:  # llama_index ToolSelection
        arguments = _arguments(item.get("tool_kwargs"))
        call_id = _str(item.get("tool_id")) or _synthetic_id(item["tool_name"], arguments)
        return ToolCall(id=call_id, name=str(item["tool_name"]), arguments=arguments)
    function = item.get("function")
    if isinstance(function, Mapping) and _str(function.get("name")):
        arguments = _arguments(function.get("arguments"))
        call_id = _str(item.get("id")) or _synthetic_id(function["name"], arguments)
        return ToolCall(id=call_id, name=str(function["name"]), arguments=arguments)
    return None


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value or "{}"
    return json.dumps(value if value is not None else {}, ensure_ascii=False, sort_keys=True)


def _tool_kwargs(arguments: str) -> dict[str, Any] | str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments


def _blocks_of(message: Message) -> list[Any]:
    """The native blocks of a core message: its text, then one ``ToolCallBlock`` per call."""
    blocks: list[Any] = []
    if message.content or not message.tool_calls:
        blocks.append(TextBlock(text=message.content))
    blocks.extend(
        ToolCallBlock(
            tool_call_id=call.id, tool_name=call.name, tool_kwargs=_tool_kwargs(call.arguments)
        )
        for call in message.tool_calls
    )
    return blocks


def _placeholder(message: ChatMessage) -> str:
    kinds = [block.block_type for block in message.blocks if not isinstance(block, TextBlock)]
    if not kinds:
        return "[empty message]"
    return "[" + ", ".join(dict.fromkeys(kinds)) + "]"
