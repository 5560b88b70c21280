"""Round trips of every LangChain message type through the one conversion."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_tiered_memory import (
    from_core_message,
    from_core_messages,
    to_core_message,
    to_core_messages,
)
from tiered_memory import InvalidMessageError, Message, ToolCall

ROUND_TRIP = [
    HumanMessage("hello", id="h1", name="kha"),
    HumanMessage(
        "with extras",
        id="h2",
        additional_kwargs={"lang": "vi", "nested": {"a": [1, 2]}},
        response_metadata={"source": "web"},
    ),
    SystemMessage("be brief", id="s1"),
    AIMessage(
        "calling tools",
        id="a1",
        name="agent",
        tool_calls=[
            {
                "name": "search",
                "args": {"q": "weather", "n": 2},
                "id": "call_1",
                "type": "tool_call",
            },
            {"name": "clock", "args": {}, "id": "call_2", "type": "tool_call"},
        ],
        additional_kwargs={"refusal": None},
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "tool_calls"},
        usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    ),
    AIMessage(
        "", id="a2", tool_calls=[{"name": "t", "args": {"x": 1}, "id": "c3", "type": "tool_call"}]
    ),
    AIMessage(
        "bad call",
        id="a3",
        invalid_tool_calls=[
            {
                "name": "t",
                "args": "{oops",
                "id": "c4",
                "error": "bad json",
                "type": "invalid_tool_call",
            }
        ],
    ),
    ToolMessage("sunny", tool_call_id="call_1", id="t1", name="search"),
    ToolMessage("boom", tool_call_id="call_2", id="t2", status="error", artifact={"trace": [1, 2]}),
    ChatMessage("from the dev", role="developer", id="c1"),
    ChatMessage("custom human", role="human", id="c2"),
    FunctionMessage("42", name="calc", id="f1"),
    HumanMessage(
        [
            {"type": "text", "text": "What is in "},
            {"type": "text", "text": "this picture?"},
            {"type": "image", "url": "https://example.com/cat.png"},
        ],
        id="m1",
    ),
    HumanMessage([{"type": "image", "url": "https://example.com/only.png"}], id="m2"),
    AIMessage(["plain string block", {"type": "text", "text": " and a dict block"}], id="m3"),
]


@pytest.mark.parametrize("message", ROUND_TRIP, ids=lambda m: f"{type(m).__name__}-{m.id}")
def test_round_trip_keeps_every_field(message: BaseMessage) -> None:
    core = to_core_message(message)
    back = from_core_message(core)
    assert type(back) is type(message)
    assert back == message


@pytest.mark.parametrize("message", ROUND_TRIP, ids=lambda m: f"{type(m).__name__}-{m.id}")
def test_round_trip_survives_core_serialization(message: BaseMessage) -> None:
    core = Message.from_dict(json.loads(json.dumps(to_core_message(message).to_dict())))
    assert from_core_message(core) == message


def test_roles_and_core_fields() -> None:
    core = to_core_messages(ROUND_TRIP[:4])
    assert [m.role for m in core] == ["user", "user", "system", "assistant"]
    assert core[0].name == "kha"
    assert core[3].tool_calls == (
        ToolCall(id="call_1", name="search", arguments='{"q": "weather", "n": 2}'),
        ToolCall(id="call_2", name="clock", arguments="{}"),
    )
    assert core[1].metadata["langchain"]["additional_kwargs"]["lang"] == "vi"
    tool = to_core_message(ROUND_TRIP[6])
    assert (tool.role, tool.tool_call_id, tool.content) == ("tool", "call_1", "sunny")


def test_content_blocks_become_text_with_raw_list_in_metadata() -> None:
    core = to_core_message(ROUND_TRIP[11])
    assert core.content == "What is in this picture?"
    assert core.metadata["langchain"]["content"] == ROUND_TRIP[11].content


def test_content_without_text_gets_a_placeholder() -> None:
    assert to_core_message(ROUND_TRIP[12]).content == "[image]"


def test_ai_message_chunk_becomes_ai_message() -> None:
    chunk = AIMessageChunk(content="Hel", id="run-1") + AIMessageChunk(content="lo")
    back = from_core_message(to_core_message(chunk))
    assert type(back) is AIMessage
    assert (back.content, back.id) == ("Hello", "run-1")


def test_tool_call_chunks_become_tool_calls() -> None:
    chunk = AIMessageChunk(
        content="",
        id="run-2",
        tool_call_chunks=[
            {"name": "search", "args": '{"q": ', "id": "c9", "index": 0, "type": "tool_call_chunk"}
        ],
    ) + AIMessageChunk(
        content="",
        tool_call_chunks=[
            {"name": None, "args": '"x"}', "id": None, "index": 0, "type": "tool_call_chunk"}
        ],
    )
    back = from_core_message(to_core_message(chunk))
    assert type(back) is AIMessage
    assert back.tool_calls == [
        {"name": "search", "args": {"q": "x"}, "id": "c9", "type": "tool_call"}
    ]


def test_other_chunks_become_their_full_class() -> None:
    back = from_core_message(to_core_message(HumanMessageChunk(content="hi", id="h9")))
    assert type(back) is HumanMessage


def test_missing_ids_are_generated() -> None:
    message = HumanMessage("no id")
    first, second = to_core_message(message), to_core_message(message)
    assert first.id and second.id and first.id != second.id
    call = AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": None, "type": "tool_call"}])
    assert to_core_message(call, id="a7").tool_calls[0].id == "call_a7_0"


def test_core_messages_of_other_adapters_convert_to_plain_classes() -> None:
    messages = [
        Message(role="user", content="hi", id="u"),
        Message(
            role="assistant",
            content="",
            id="a",
            tool_calls=(ToolCall(id="c", name="f", arguments='{"x": 1}'),),
            metadata={"additional_kwargs": {"llamaindex": True}},
        ),
        Message(role="tool", content="1", tool_call_id="c", id="t"),
        Message(role="system", content="Previous conversation summary:\n- x", id="summary:s1"),
    ]
    back = from_core_messages(messages)
    assert [type(m) for m in back] == [HumanMessage, AIMessage, ToolMessage, SystemMessage]
    assert back[1].tool_calls == [{"name": "f", "args": {"x": 1}, "id": "c", "type": "tool_call"}]
    assert back[1].additional_kwargs == {}  # another adapter's extras are not LangChain's
    assert back[3].id == "summary:s1"


def test_tool_arguments_that_are_not_json_become_invalid_tool_calls() -> None:
    core = Message(
        role="assistant",
        content="",
        id="a",
        tool_calls=(ToolCall(id="c", name="f", arguments="{x"),),
    )
    back = from_core_message(core)
    assert isinstance(back, AIMessage)
    assert back.tool_calls == []
    assert back.invalid_tool_calls[0]["args"] == "{x"


def test_non_json_extras_are_dropped_not_fatal() -> None:
    message = HumanMessage("hi", id="h", additional_kwargs={"ok": 1, "bad": object()})
    core = to_core_message(message)
    assert core.metadata["langchain"]["additional_kwargs"] == {"ok": 1}


@pytest.mark.parametrize(
    "message",
    [RemoveMessage(id="x"), ChatMessage("?", role="robot"), HumanMessage("   ")],
    ids=["remove", "unknown-role", "blank"],
)
def test_unconvertible_messages_raise_invalid_message_error(message: BaseMessage) -> None:
    with pytest.raises(InvalidMessageError):
        to_core_message(message)


_text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), _text)
_args = st.dictionaries(st.text(min_size=1, max_size=8), _json_scalar, max_size=4)


@st.composite
def _messages(draw: st.DrawFn) -> BaseMessage:
    kind = draw(st.sampled_from(["human", "system", "ai", "tool"]))
    content = draw(_text)
    extras = draw(st.dictionaries(st.text(min_size=1, max_size=8), _json_scalar, max_size=3))
    if kind == "human":
        return HumanMessage(content, id=draw(_text), additional_kwargs=extras)
    if kind == "system":
        return SystemMessage(content, id=draw(_text))
    if kind == "tool":
        return ToolMessage(content, tool_call_id=draw(_text), id=draw(_text))
    calls = draw(st.lists(_args, max_size=3))
    return AIMessage(
        content,
        id=draw(_text),
        response_metadata=extras,
        tool_calls=[
            {"name": "f", "args": args, "id": f"c{i}", "type": "tool_call"}
            for i, args in enumerate(calls)
        ],
    )


@settings(max_examples=200, deadline=None)
@given(_messages())
def test_round_trip_of_random_messages(message: BaseMessage) -> None:
    assert from_core_message(to_core_message(message)) == message
