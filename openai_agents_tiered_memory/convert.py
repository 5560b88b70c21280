"""Agents SDK items (OpenAI Responses input items) <-> core messages, one item per message.

Each stored message keeps its original item in ``metadata["agents_item"]`` so the session gives
back exactly what it was given; a message without one (written by another adapter into the same
session) is rebuilt from its role, text and tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from tiered_memory import InvalidMessageError, Message, ToolCall

__all__ = ["ITEM_KEY", "item_text", "item_to_message", "message_to_items", "summary_item"]

ITEM_KEY = "agents_item"
"""Metadata key of the original item."""

_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")
_MESSAGE_ROLES = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}


def item_text(content: Any) -> str:
    """The readable text of a message content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence):
        return ""
    texts = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif kind == "input_image":
            texts.append("[image]")
        elif kind == "input_file":
            texts.append(f"[file {part.get('filename') or ''}]".replace(" ]", "]"))
    return "\n".join(t for t in texts if t)


def _arguments(value: Any) -> str:
    """Tool-call arguments as the core wants them: a JSON text (any other text is quoted)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return json.dumps(value)
        return value
    return json.dumps(value if value is not None else {})


def _plain(item: Any) -> dict[str, Any]:
    """``item`` as plain JSON data (the SDK may hand over pydantic models or TypedDicts)."""
    dump = getattr(item, "model_dump", None)
    data = dump(exclude_unset=True, mode="json") if callable(dump) else item
    if not isinstance(data, Mapping):
        raise InvalidMessageError(
            f"an Agents SDK item must be a mapping, got {type(item).__name__}"
        )
    try:
        return cast("dict[str, Any]", json.loads(json.dumps(dict(data))))
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(f"an Agents SDK item must be JSON data: {exc}") from None


def item_to_message(item: Any, *, keep_item: bool = True) -> Message:
    """One core message for one item.

    Messages keep their role (``developer`` is the core's ``system``); a ``*_call`` item with a
    ``call_id`` is an assistant tool call and its ``*_call_output`` the tool result, so the
    window never separates them; any other item (reasoning, ...) is an assistant message with its
    readable text. ``keep_item=False`` stores no copy of the item (``secrets="redact_all"``).

    Raises:
        InvalidMessageError: Not a JSON mapping, or a message without text.
    """
    data = _plain(item)
    kind = data.get("type")
    metadata = {ITEM_KEY: data} if keep_item else {}
    role = data.get("role")
    if isinstance(role, str) and kind in (None, "message"):
        if role not in _MESSAGE_ROLES:
            raise InvalidMessageError(f"unknown message role {role!r} in an Agents SDK item")
        text = item_text(data.get("content"))
        return Message(
            role=_MESSAGE_ROLES[role],  # type: ignore[arg-type]
            content=text if text.strip() else "[empty message]",
            metadata=metadata,
        )
    call_id = data.get("call_id")
    if isinstance(kind, str) and isinstance(call_id, str) and call_id:
        if kind.endswith("_call_output"):
            output = data.get("output")
            text = output if isinstance(output, str) else item_text(output) or json.dumps(output)
            return Message(
                role="tool",
                content=text if text.strip() else "(no output)",
                tool_call_id=call_id,
                metadata=metadata,
            )
        if kind.endswith("_call"):
            name = data.get("name") if isinstance(data.get("name"), str) else None
            arguments = data.get("arguments", data.get("input", data.get("action")))
            call = ToolCall(id=call_id, name=name or kind, arguments=_arguments(arguments))
            return Message(role="assistant", content="", tool_calls=(call,), metadata=metadata)
    text = item_text(data.get("summary")) or item_text(data.get("content"))
    return Message(
        role="assistant",
        content=text if text.strip() else f"[{kind or 'item'}]",
        metadata=metadata,
    )


def message_to_items(message: Message) -> list[dict[str, Any]]:
    """The items of a stored message: its original item, or items rebuilt from it."""
    original = message.metadata.get(ITEM_KEY)
    if isinstance(original, Mapping):
        return [dict(original)]
    items: list[dict[str, Any]] = []
    if message.role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.tool_call_id or "",
                "output": message.content,
            }
        ]
    if message.content.strip():
        role = "system" if message.role == "system" else message.role
        items.append({"role": role, "content": message.content})
    items.extend(
        {
            "type": "function_call",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
        }
        for call in message.tool_calls
    )
    return items


def summary_item(message: Message, role: str = "system") -> dict[str, Any]:
    """The Tier-2 summary as a ``system`` (or ``developer``) message item."""
    return {"role": role, "content": message.content}
