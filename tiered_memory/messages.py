"""The one message model of the library and its OpenAI-format dict conversion."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Literal, TypedDict, cast

from .errors import InvalidMessageError

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_message_id() -> str:
    return uuid.uuid4().hex


def _check_text(value: object, what: str) -> None:
    """Strings only, and storable ones: a lone surrogate cannot be encoded as UTF-8."""
    if not isinstance(value, str):
        raise InvalidMessageError(f"{what} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMessageError(f"{what} is not valid Unicode text: {exc}") from exc


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    """ToolCall objects or OpenAI-shaped dicts, given as a list."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidMessageError(f"tool_calls must be a list, got {type(value).__name__}")
    return tuple(c if isinstance(c, ToolCall) else ToolCall.from_dict(c) for c in value)


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidMessageError(f"metadata must be a mapping, got {type(value).__name__}")
    return dict(value)


@dataclass(frozen=True)
class ToolCall:
    """A function call requested by an assistant message (OpenAI shape)."""

    id: str
    name: str
    arguments: str = "{}"  # JSON text, as the OpenAI API sends it

    def __post_init__(self) -> None:
        for value, what in ((self.id, "tool call id"), (self.name, "tool name")):
            _check_text(value, what)
            if not value:
                raise InvalidMessageError(f"{what} must not be empty")
        _check_text(self.arguments, "tool call arguments")

    def check_arguments(self) -> None:
        """Raise InvalidMessageError unless ``arguments`` is JSON text (checked on storing)."""
        if self.arguments.strip():
            try:
                json.loads(self.arguments)
            except (ValueError, RecursionError) as exc:
                raise InvalidMessageError(
                    f"tool call {self.id!r}: arguments must be JSON text ({exc})"
                ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Accept the OpenAI shape or a flat ``{"id", "name", "args"|"arguments"}`` one."""
        if not isinstance(data, Mapping):
            raise InvalidMessageError(f"tool call must be a mapping, got {type(data).__name__}")
        function = data.get("function")
        if isinstance(function, Mapping):
            name, arguments = function.get("name"), function.get("arguments", "{}")
        else:
            name = data.get("name")
            arguments = data.get("arguments", data.get("args", "{}"))
        if not isinstance(arguments, str):
            try:
                arguments = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
            except (TypeError, ValueError, RecursionError) as exc:
                raise InvalidMessageError(f"tool call arguments must be JSON: {exc}") from None
        call_id = data.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidMessageError("tool call needs a non-empty string 'id'")
        if not isinstance(name, str) or not name:
            raise InvalidMessageError(f"tool call {call_id!r} needs a non-empty function name")
        return cls(id=call_id, name=name, arguments=arguments)


@dataclass(frozen=True)
class Message:
    """One chat message. Immutable; validated at construction.

    ``metadata`` carries framework extras (LangChain ``additional_kwargs``, LlamaIndex
    ``additional_kwargs``) as JSON-serializable data so adapters can round-trip them.
    """

    role: Role
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    id: str = field(default_factory=new_message_id)
    created_at: datetime = field(default_factory=utcnow)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidMessageError(f"unknown role {self.role!r}: expected one of {ROLES}")
        _check_text(self.content, "content")
        if not isinstance(self.tool_calls, (tuple, list)) or not all(
            isinstance(c, ToolCall) for c in self.tool_calls
        ):
            raise InvalidMessageError("tool_calls must be a list of ToolCall")
        if not self.content.strip() and not self.tool_calls:
            raise InvalidMessageError(
                f"{self.role} message content is empty (only an assistant message with tool_calls "
                "may have empty content)"
            )
        if self.tool_calls and self.role != "assistant":
            raise InvalidMessageError(f"only assistant messages carry tool_calls, not {self.role}")
        if self.role == "tool" and not self.tool_call_id:
            raise InvalidMessageError("a tool result needs the tool_call_id of the call it answers")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise InvalidMessageError("name must be a non-empty string or None")
        if not isinstance(self.id, str) or not self.id:
            raise InvalidMessageError("id must be a non-empty string")
        if self.tool_call_id is not None and (
            not isinstance(self.tool_call_id, str) or not self.tool_call_id
        ):
            raise InvalidMessageError("tool_call_id must be a non-empty string or None")
        for text, what in (
            (self.name, "name"),
            (self.id, "id"),
            (self.tool_call_id, "tool_call_id"),
        ):
            if text is not None:
                _check_text(text, what)
        if not isinstance(self.metadata, Mapping):
            raise InvalidMessageError("metadata must be a mapping")
        if not isinstance(self.created_at, datetime):
            raise InvalidMessageError("created_at must be a datetime")
        if self.created_at.tzinfo is None:
            object.__setattr__(self, "created_at", self.created_at.replace(tzinfo=timezone.utc))
        if not isinstance(self.tool_calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        try:
            json.dumps(dict(self.metadata))
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidMessageError(f"metadata must be JSON-serializable: {exc}") from None

    @classmethod
    def trusted(cls, **values: Any) -> Message:
        """Rebuild a message that was validated when stored (loading from a store), skipping
        validation: loading the window is on every turn's path."""
        message = object.__new__(cls)
        for name in _FIELD_NAMES:
            object.__setattr__(message, name, values[name])
        return message

    def with_content(self, content: str) -> Message:
        return replace(self, content=content)

    def to_dict(self) -> dict[str, Any]:
        """OpenAI chat format, plus ``id`` (APIs ignore unknown keys only sometimes: see to_openai)."""
        data = self.to_openai()
        data["id"] = self.id
        data["created_at"] = self.created_at.isoformat()
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        return data

    def to_openai(self) -> dict[str, Any]:
        """Exactly the keys the OpenAI chat completions API accepts."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name:
            data["name"] = self.name
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id:
            data["tool_call_id"] = self.tool_call_id
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Build from an OpenAI-format dict (``id``, ``created_at``, ``metadata`` optional)."""
        if not isinstance(data, Mapping):
            raise InvalidMessageError(f"message must be a mapping, got {type(data).__name__}")
        created = data.get("created_at")
        if isinstance(created, str):
            try:
                created = datetime.fromisoformat(created)
            except ValueError as exc:
                raise InvalidMessageError(f"created_at {created!r} is not ISO 8601") from exc
        content = data.get("content")
        if content is None:
            content = ""
        kwargs: dict[str, Any] = {
            "role": data.get("role"),
            "content": content,
            "name": data.get("name"),
            "tool_calls": _tool_calls(data.get("tool_calls")),
            "tool_call_id": data.get("tool_call_id"),
            "metadata": _metadata(data.get("metadata")),
        }
        if data.get("id") is not None:
            kwargs["id"] = data["id"]
        if created is not None:
            kwargs["created_at"] = created
        return cls(**kwargs)


_FIELD_NAMES = tuple(f.name for f in fields(Message))

MessageLike = Message | Mapping[str, Any]


def make_message(
    role: str,
    content: Any,
    *,
    name: str | None = None,
    tool_calls: Sequence[ToolCall | Mapping[str, Any]] = (),
    tool_call_id: str | None = None,
    id: str | None = None,
    created_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Message:
    """Validate loose arguments into a :class:`Message` (raises InvalidMessageError)."""
    kwargs: dict[str, Any] = {
        "role": cast(Role, role),
        "content": content,
        "name": name,
        "tool_calls": _tool_calls(tool_calls),
        "tool_call_id": tool_call_id,
        "metadata": _metadata(metadata),
    }
    if id is not None:
        kwargs["id"] = id
    if created_at is not None:
        kwargs["created_at"] = created_at
    return Message(**kwargs)


def coerce_message(item: MessageLike) -> Message:
    """A Message as is, or one built from an OpenAI-format dict."""
    if isinstance(item, Message):
        return item
    return Message.from_dict(item)


def clipped(message: Message, max_chars: int) -> Message:
    """``message`` with its content cut to ``max_chars`` (and a marker saying how much), for a
    tier that cannot use more: the log keeps the whole text."""
    if len(message.content) <= max_chars:
        return message
    rest = len(message.content) - max_chars
    content = f"{message.content[:max_chars]} [... {rest} more characters in the session log]"
    return replace(message, content=content)


class MessageFields(TypedDict, total=False):
    """The optional fields of :meth:`TieredMemory.add` (see :class:`Message`)."""

    name: str | None
    tool_calls: Sequence[ToolCall | Mapping[str, Any]]
    tool_call_id: str | None
    id: str | None
    created_at: datetime | None
    metadata: Mapping[str, Any] | None


__all__ = [
    "Message",
    "MessageFields",
    "MessageLike",
    "ToolCall",
    "clipped",
    "coerce_message",
    "make_message",
    "new_message_id",
    "utcnow",
]
