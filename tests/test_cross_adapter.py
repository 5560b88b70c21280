"""One core store, one schema: a session written through one adapter reads through the other."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from langchain_tiered_memory import TieredChatMessageHistory
from llamaindex_tiered_memory import TieredChatMemory
from tiered_memory import HashEmbedder, MemoryConfig

CONFIG = MemoryConfig(compaction="inline", window_tokens=400, summary_tokens=120)


def test_langchain_session_reads_through_llamaindex(tmp_path: Path) -> None:
    history = TieredChatMessageHistory(
        session_id="s1", user_id="kha", path=tmp_path, config=CONFIG, embeddings=HashEmbedder()
    )
    history.add_messages(
        [
            HumanMessage("My name is Kha."),
            AIMessage("", tool_calls=[{"id": "c1", "name": "lookup", "args": {"q": "Kha"}}]),
            ToolMessage("Kha is learning AI engineering.", tool_call_id="c1"),
            AIMessage("Hello Kha!"),
        ]
    )
    memory = TieredChatMemory.from_defaults(
        session_id="s1", user_id="kha", path=tmp_path, config=CONFIG, embed_model=HashEmbedder()
    )
    messages = memory.get_all()
    assert [m.role for m in messages] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.ASSISTANT,
    ]
    assert messages[0].content == "My name is Kha."
    assert messages[2].additional_kwargs.get("tool_call_id") == "c1"


def test_llamaindex_session_reads_through_langchain(tmp_path: Path) -> None:
    memory = TieredChatMemory.from_defaults(
        session_id="s2", user_id="kha", path=tmp_path, config=CONFIG, embed_model=HashEmbedder()
    )
    memory.put_messages(
        [
            ChatMessage(role=MessageRole.USER, content="I prefer dark mode."),
            ChatMessage(role=MessageRole.ASSISTANT, content="Dark mode it is."),
        ]
    )
    history = TieredChatMessageHistory(
        session_id="s2", user_id="kha", path=tmp_path, config=CONFIG, embeddings=HashEmbedder()
    )
    messages = history.messages
    assert isinstance(messages[0], HumanMessage) and messages[0].content == "I prefer dark mode."
    assert isinstance(messages[1], AIMessage) and messages[1].content == "Dark mode it is."
