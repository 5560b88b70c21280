"""ChatMessage <-> tiered_memory.Message: the one conversion of the adapter."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import BaseModel
from llama_index.core.tools import ToolSelection

from llamaindex_tiered_memory import from_core, to_core
from tiered_memory import Message, ToolCall

ROUND_TRIPS = {
    "user text": ChatMessage(role="user", content="My name is Kha."),
    "system": ChatMessage(role="system", content="Be brief."),
    "assistant text": ChatMessage(role="assistant", content="Hello Kha."),
    "assistant tool call block": ChatMessage(
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 1, "b": 2})],
    ),
    "assistant text and two calls": ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="Let me check."),
            ToolCallBlock(tool_call_id="c1", tool_name="weather", tool_kwargs={"city": "Hanoi"}),
            ToolCallBlock(tool_call_id="c2", tool_name="time", tool_kwargs={}),
        ],
    ),
    "tool call with string arguments": ChatMessage(
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs='{"x": 1')],
    ),
    "tool call without id": ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_name="f", tool_kwargs={"x": 1})]
    ),
    "tool result": ChatMessage(
        role="tool", content="3", additional_kwargs={"tool_call_id": "c1", "name": "add"}
    ),
    "tool result without id": ChatMessage(role="tool", content="orphan"),
    "function result": ChatMessage(role="function", content="42", additional_kwargs={"name": "f"}),
    "developer": ChatMessage(role="developer", content="Answer in French."),
    "chatbot": ChatMessage(role="chatbot", content="Bonjour."),
    "model": ChatMessage(role="model", content="Hi from Gemini."),
    "extra kwargs": ChatMessage(
        role="assistant", content="x", additional_kwargs={"refusal": None, "n": [1, {"a": 2}]}
    ),
    "openai tool_calls kwargs": ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={
            "tool_calls": [
                {"id": "c9", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ]
        },
    ),
    "image": ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/cat.png")]),
    "text and image": ChatMessage(
        role="user",
        blocks=[TextBlock(text="What is this?"), ImageBlock(url="https://example.com/cat.png")],
    ),
    "two text blocks": ChatMessage(
        role="user", blocks=[TextBlock(text="first"), TextBlock(text="second")]
    ),
    "thinking": ChatMessage(
        role="assistant", blocks=[ThinkingBlock(content="hmm"), TextBlock(text="42")]
    ),
    "empty assistant": ChatMessage(role="assistant", content=""),
}


@pytest.mark.parametrize("message", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip_gives_back_the_same_chat_message(message: ChatMessage) -> None:
    core = to_core(message)
    stored = Message.from_dict(json.loads(json.dumps(core.to_dict())))  # as a store keeps it
    assert from_core(stored) == message


@given(
    role=st.sampled_from(list(MessageRole)),
    text=st.text(min_size=1).filter(lambda t: t.strip()),
)
def test_round_trip_of_any_role_and_text(role: MessageRole, text: str) -> None:
    message = ChatMessage(role=role, content=text)
    assert from_core(to_core(message)) == message


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system", "system"),
        ("developer", "system"),
        ("user", "user"),
        ("assistant", "assistant"),
        ("chatbot", "assistant"),
        ("model", "assistant"),
        ("tool", "tool"),
        ("function", "tool"),
    ],
)
def test_roles_map_to_core_roles(role: str, expected: str) -> None:
    kwargs = {"tool_call_id": "c1"} if expected == "tool" else {}
    assert to_core(ChatMessage(role=role, content="x", additional_kwargs=kwargs)).role == expected


def test_tool_call_block_becomes_core_tool_call() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"b": 2, "a": 1})],
    )
    core = to_core(message)
    assert core.content == ""
    assert core.tool_calls == (ToolCall(id="c1", name="add", arguments='{"a": 1, "b": 2}'),)
    assert core.metadata == {}  # nothing LlamaIndex-only to keep


def test_openai_tool_calls_in_additional_kwargs_become_core_tool_calls() -> None:
    call = {"id": "c9", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}}
    core = to_core(ChatMessage(role="assistant", additional_kwargs={"tool_calls": [call]}))
    assert core.tool_calls == (ToolCall(id="c9", name="g", arguments='{"x": 1}'),)


def test_tool_selections_in_additional_kwargs_become_core_tool_calls() -> None:
    selection = ToolSelection(tool_id="c3", tool_name="search", tool_kwargs={"q": "pho"})
    core = to_core(ChatMessage(role="assistant", additional_kwargs={"tool_calls": [selection]}))
    assert core.tool_calls == (ToolCall(id="c3", name="search", arguments='{"q": "pho"}'),)
    json.dumps(dict(core.metadata))  # the pydantic object was stored as JSON data


def test_tool_call_id_comes_from_additional_kwargs() -> None:
    core = to_core(ChatMessage(role="tool", content="3", additional_kwargs={"tool_call_id": "c1"}))
    assert (core.role, core.tool_call_id) == ("tool", "c1")


def test_tool_call_id_is_not_put_on_non_tool_messages() -> None:
    # FunctionAgent's return_direct answer is an assistant message carrying a tool_call_id.
    message = ChatMessage(role="assistant", content="42", additional_kwargs={"tool_call_id": "c1"})
    core = to_core(message)
    assert core.tool_call_id is None
    assert from_core(core) == message


def test_unserializable_additional_kwargs_are_stored_as_json() -> None:
    class Usage(BaseModel):
        tokens: int

    core = to_core(
        ChatMessage(role="assistant", content="x", additional_kwargs={"u": Usage(tokens=3)})
    )
    assert core.metadata["llama_index"]["additional_kwargs"] == {"u": {"tokens": 3}}


def test_message_without_text_gets_a_placeholder_content() -> None:
    core = to_core(ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/a.png")]))
    assert core.content == "[image]"


def test_messages_of_another_adapter_get_native_llamaindex_shape() -> None:
    call = ToolCall(id="c1", name="add", arguments='{"a": 1}')
    assistant = from_core(Message(role="assistant", content="", tool_calls=(call,)))
    assert assistant.blocks == [
        ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 1})
    ]
    tool = from_core(
        Message(role="tool", content="1", tool_call_id="c1", name="add", metadata={"langchain": {}})
    )
    assert tool.role == MessageRole.TOOL
    assert tool.additional_kwargs == {"tool_call_id": "c1"}
    named = from_core(Message(role="user", content="hi", name="kha"))
    assert named.additional_kwargs == {"name": "kha"}
    assert tool.content == "1"


def test_core_ids_are_kept_when_given() -> None:
    assert to_core(ChatMessage(role="user", content="hi"), id="m-1").id == "m-1"
