from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tiered_memory import InvalidMessageError, Message, ToolCall
from tiered_memory.messages import make_message


def test_round_trip_through_openai_dict_keeps_every_field() -> None:
    message = Message(
        role="assistant",
        content="",
        tool_calls=(ToolCall(id="c1", name="search", arguments='{"q": "x"}'),),
        id="m1",
        created_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
        metadata={"k": [1, 2]},
        name="bot",
    )
    assert Message.from_dict(message.to_dict()) == message


def test_to_openai_has_only_api_keys() -> None:
    data = Message(role="tool", content="42", tool_call_id="c1").to_openai()
    assert data == {"role": "tool", "content": "42", "tool_call_id": "c1"}


@pytest.mark.parametrize(
    ("role", "content", "extra"),
    [
        ("user", "", {}),
        ("user", "   ", {}),
        ("user", 42, {}),
        ("user", None, {}),
        ("wizard", "hi", {}),
        ("tool", "result", {}),
        ("user", "hi", {"tool_calls": [{"id": "c", "name": "f"}]}),
        ("user", "hi", {"name": ""}),
        ("user", "hi", {"metadata": {"x": object()}}),
    ],
)
def test_bad_messages_raise_invalid_message_error(
    role: object, content: object, extra: dict
) -> None:
    with pytest.raises(InvalidMessageError):
        make_message(role, content, **extra)  # type: ignore[arg-type]


def test_assistant_with_tool_calls_may_have_empty_content() -> None:
    message = make_message(
        "assistant", "", tool_calls=[{"id": "c1", "name": "f", "args": {"a": 1}}]
    )
    assert message.tool_calls[0].arguments == '{"a": 1}'


def test_naive_created_at_is_taken_as_utc() -> None:
    message = make_message("user", "hi", created_at=datetime(2023, 5, 8, 13, 56))
    assert message.created_at.tzinfo is timezone.utc
