"""TieredChatMemory as a LlamaIndex BaseMemory: budgets, summary, lossless history, set()."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.chat_engine import CondensePlusContextChatEngine, SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llamaindex_tiered_memory import LlamaIndexSummarizer, TieredChatMemory, to_core
from llamaindex_tiered_memory.memory import public_config
from tiered_memory import (
    SUMMARY_PREFIX,
    ConfigError,
    MemoryConfig,
    SummaryRequest,
    build_summary_prompt,
    token_counter,
)

MemoryFactory = Callable[..., TieredChatMemory]

TOKEN_LIMIT = 200
SUMMARY_LIMIT = 120


def forty_turns(engine: SimpleChatEngine) -> list[str]:
    said = ["My name is Kha."]
    engine.chat(said[0])
    for turn in range(1, 40):
        said.append(f"Question {turn}: how should I size chunks for document number {turn}?")
        engine.chat(said[-1])
    return said


def test_forty_turn_chat_engine_stays_inside_the_budget(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=TOKEN_LIMIT, summary_token_limit=SUMMARY_LIMIT)
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=12)
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt="Be brief.")
    counter = token_counter("gpt-4o-mini")
    prefix_tokens = counter.count_text("Be brief.")
    engine.chat("My name is Kha.")
    for turn in range(1, 40):
        engine.chat(f"Question {turn}: how should I size chunks for document number {turn}?")
        sent = list(llm.last_chat_messages or [])
        assert sent[0].content == "Be brief."  # the engine's prefix, then the memory
        summary = [m for m in sent[1:] if m.role == "system"]
        window = [m for m in sent[1:] if m.role != "system"]
        window_tokens = sum(counter.count_message(to_core(m)) for m in window)
        assert window_tokens <= TOKEN_LIMIT - prefix_tokens
        for message in summary:
            assert counter.count_text(message.content or "") <= SUMMARY_LIMIT + 10
    assert memory.core.stats.summarizer_calls > 0  # the conversation did overflow


def test_summary_keeps_an_early_fact(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=TOKEN_LIMIT, summary_token_limit=SUMMARY_LIMIT)
    forty_turns(SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=12), memory=memory))
    context = memory.get()
    assert all("My name is Kha." not in (m.content or "") for m in context[1:])  # out of window
    assert context[0].role == "system"
    assert context[0].content.startswith(SUMMARY_PREFIX)
    assert "Kha" in context[0].content


def test_get_all_keeps_every_message_in_order(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=TOKEN_LIMIT, summary_token_limit=SUMMARY_LIMIT)
    said = forty_turns(SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=12), memory=memory))
    history = memory.get_all()
    assert len(history) == 80
    assert [m.content for m in history if m.role == "user"] == said
    assert all(m.role == "assistant" for m in history[1::2])


def test_get_takes_initial_token_count_into_the_budget(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=TOKEN_LIMIT)
    for turn in range(6):
        memory.put(ChatMessage(role="user", content=f"Tell me about topic number {turn}, please."))
    full = memory.get()
    reserved = memory.get(initial_token_count=150)
    assert len(reserved) < len(full)
    assert reserved == full[len(full) - len(reserved) :]  # the newest messages are kept


def test_chat_engine_sizes_its_prefix_with_tokenizer_fn(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    assert len(memory.tokenizer_fn("hello world")) == token_counter("gpt-4o-mini").count_text(
        "hello world"
    )


def test_put_messages_stores_a_tool_turn_as_one_batch(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=60)
    memory.put(ChatMessage(role="user", content="What is 6 times 7? " * 3))
    turn = [
        ChatMessage(
            role="assistant",
            blocks=[
                ToolCallBlock(tool_call_id="c1", tool_name="mul", tool_kwargs={"a": 6, "b": 7})
            ],
        ),
        ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "c1"}),
        ChatMessage(role="assistant", content="6 times 7 is 42."),
    ]
    memory.put_messages(turn)
    window = [m for m in memory.get() if m.role != "system"]
    assert window[0].role != "tool"  # never a result without its call
    assert memory.get_all()[1:] == turn


def test_set_with_get_all_plus_new_messages_stores_only_the_new(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    memory.put_messages(
        [ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="hello")]
    )
    new = ChatMessage(role="user", content="how are you?")
    memory.set([*memory.get_all(), new])
    assert [m.content for m in memory.get_all()] == ["hi", "hello", "how are you?"]


def test_set_with_get_output_skips_the_summary_and_the_window(make_memory: MemoryFactory) -> None:
    memory = make_memory(token_limit=TOKEN_LIMIT, summary_token_limit=SUMMARY_LIMIT)
    forty_turns(SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=12), memory=memory))
    before = memory.get_all()
    context = memory.get()
    assert context[0].role == "system"
    memory.set([*context, ChatMessage(role="user", content="one more thing")])
    after = memory.get_all()
    assert after[:-1] == before
    assert after[-1].content == "one more thing"


def test_set_on_a_new_session_stores_the_whole_list(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    history = [
        ChatMessage(role="system", content="You are terse."),
        ChatMessage(role="user", content="ok"),
        ChatMessage(role="assistant", content="ok"),
        ChatMessage(role="user", content="ok"),
    ]
    memory.set(history)
    assert memory.get_all() == history


def test_set_twice_with_the_same_list_is_idempotent(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    history = [ChatMessage(role="user", content="ok"), ChatMessage(role="assistant", content="ok")]
    memory.set(history)
    memory.set(history)
    assert memory.get_all() == history


def test_set_never_deletes_and_reset_does(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    memory.put(ChatMessage(role="user", content="keep me"))
    memory.set([])
    assert [m.content for m in memory.get_all()] == ["keep me"]
    memory.reset()
    assert memory.get_all() == []
    assert memory.get() == []


def test_chat_history_argument_of_the_engine_is_not_duplicated(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=3), memory=memory)
    engine.chat("first")
    engine.chat("second", chat_history=engine.chat_history)
    assert [m.content for m in memory.get_all() if m.role == "user"] == ["first", "second"]


class _Retriever(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text="Chunks of 200-500 tokens work well."), score=1.0)]


def test_condense_plus_context_engine_reads_the_memory_with_input(
    make_memory: MemoryFactory,
) -> None:
    memory = make_memory(token_limit=TOKEN_LIMIT, summary_token_limit=SUMMARY_LIMIT)
    engine = CondensePlusContextChatEngine.from_defaults(
        retriever=_Retriever(), llm=MockLLM(max_tokens=8), memory=memory
    )
    engine.chat("My name is Kha.")
    for turn in range(15):
        engine.chat(f"How big should chunk {turn} be for my project on vector search?")
    assert len(memory.get_all()) == 32
    assert "Kha" in memory.get(input="What is my name?")[0].content


def test_llm_summarizer_sends_the_core_prompt(make_memory: MemoryFactory) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=4)
    memory = make_memory(token_limit=60, llm=llm)
    for turn in range(8):
        memory.put(ChatMessage(role="user", content=f"Fact number {turn}: I like green tea."))
    assert memory.core.summary == "text text text text"
    request = SummaryRequest(previous_summary="", messages=(), max_tokens=10)
    sent = llm.last_chat_messages or []
    assert sent[0].content == build_summary_prompt(request)[0]["content"]
    assert LlamaIndexSummarizer(llm).summarize(request) == "text text text text"


def test_serialized_form_is_ids_path_and_config(make_memory: MemoryFactory) -> None:
    memory = make_memory(llm=MockLLM(max_tokens=2))
    data = memory.to_dict()
    assert set(data) == {"session_id", "user_id", "path", "config", "class_name"}
    assert data["config"]["window_tokens"] == 200
    assert Path(data["path"]).is_absolute()  # restorable from another working directory


def test_secrets_are_not_serialized(make_memory: MemoryFactory) -> None:
    memory = make_memory(
        config={"chroma_headers": {"Authorization": "Bearer s3cret"}, "retry_backoff": 0.0}
    )
    assert "s3cret" not in memory.to_json()


def test_restored_memory_reconnects_to_the_same_session(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    memory.put(ChatMessage(role="user", content="remember me"))
    restored = TieredChatMemory.from_dict(memory.to_dict())
    assert restored.get_all() == memory.get_all()
    restored.put(ChatMessage(role="assistant", content="I will."))
    assert [m.content for m in memory.get_all()] == ["remember me", "I will."]


def test_copies_and_pickles_are_handles_on_the_same_session(make_memory: MemoryFactory) -> None:
    memory = make_memory()
    memory.put(ChatMessage(role="user", content="hi"))
    assert copy.deepcopy(memory).core is memory.core
    loaded = pickle.loads(pickle.dumps(memory))
    assert loaded.embed_model is None  # live objects are not pickled
    assert loaded.get_all() == memory.get_all()


def test_database_password_is_masked_and_not_guessed(tmp_path: Path) -> None:
    url = "postgresql+psycopg://app:s3cret@db.example.com/memory"
    assert public_config(MemoryConfig(session_store_url=url))["session_store_url"] == (
        "postgresql+psycopg://app:***@db.example.com/memory"
    )
    restored = TieredChatMemory(
        session_id="s1",
        user_id="kha",
        path=str(tmp_path),
        config={"session_store_url": "postgresql+psycopg://app:***@db.example.com/memory"},
    )
    with pytest.raises(ConfigError, match="without its database password"):
        restored.get()
