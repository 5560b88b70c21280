"""TieredChatMessageHistory, alone and under RunnableWithMessageHistory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from lc_fakes import ScriptedChatModel, echo

from langchain_tiered_memory import (
    HISTORY_CONFIG_SPECS,
    LangChainSummarizer,
    TieredChatMessageHistory,
    history_factory,
)
from langchain_tiered_memory.convert import to_core_messages
from tiered_memory import (
    ConfigError,
    ExtractiveSummarizer,
    HashEmbedder,
    MemoryConfig,
    SummaryRequest,
    TieredMemory,
)
from tiered_memory.tokens import token_counter

# RunnableWithMessageHistory warns that it is deprecated: expected here, silenced per module only.
pytestmark = pytest.mark.filterwarnings(
    "ignore:RunnableWithMessageHistory is deprecated:DeprecationWarning"
)

CONFIG = {"configurable": {"user_id": "kha", "session_id": "s1"}}


def _chain(model: Any, memory_kwargs: dict[str, Any], *, keyed: bool) -> RunnableWithMessageHistory:
    factory = history_factory(**memory_kwargs)
    if keyed:
        prompt = ChatPromptTemplate.from_messages(
            [("system", "You are terse."), MessagesPlaceholder("history"), ("human", "{input}")]
        )
        return RunnableWithMessageHistory(
            prompt | model,
            factory,
            input_messages_key="input",
            history_messages_key="history",
            history_factory_config=list(HISTORY_CONFIG_SPECS),
        )
    return RunnableWithMessageHistory(
        model, factory, history_factory_config=list(HISTORY_CONFIG_SPECS)
    )


def _ask(keyed: bool, text: str) -> Any:
    return {"input": text} if keyed else [HumanMessage(text)]


def _texts(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages]


# --- the history alone ------------------------------------------------------------------------


def test_messages_are_window_before_any_summary(make_history: Callable[..., Any]) -> None:
    history = make_history()
    history.add_messages([HumanMessage("My name is Kha."), AIMessage("Hello Kha.")])
    assert _texts(history.messages) == ["My name is Kha.", "Hello Kha."]
    assert [type(m) for m in history.messages] == [HumanMessage, AIMessage]


def test_messages_start_with_summary_once_the_window_overflows(
    make_history: Callable[..., Any],
) -> None:
    history = make_history()
    history.add_messages([HumanMessage("My name is Kha and I live in Hanoi.")])
    for turn in range(12):
        history.add_messages(
            [HumanMessage(f"Tell me about topic {turn}"), AIMessage(f"Topic {turn} is fine.")]
        )
    first = history.messages[0]
    assert isinstance(first, SystemMessage)
    assert first.id == "summary:s1"
    assert "Kha" in first.text
    assert "My name is Kha" not in _texts(history.messages[1:])


def test_echoed_summary_message_is_not_stored(make_history: Callable[..., Any]) -> None:
    history = make_history()
    for turn in range(12):
        history.add_messages([HumanMessage(f"My fact number {turn} is {turn * 7}.")])
    view = history.messages
    assert isinstance(view[0], SystemMessage)
    before = len(history.memory.history())
    history.add_messages(view)  # summary + already-stored window: nothing new
    assert len(history.memory.history()) == before


def test_empty_messages_are_skipped(make_history: Callable[..., Any]) -> None:
    history = make_history()
    history.add_messages([HumanMessage("hi"), AIMessage(""), AIMessage("there")])
    assert _texts(history.messages) == ["hi", "there"]


def test_clear_deletes_the_session(make_history: Callable[..., Any]) -> None:
    history = make_history()
    history.add_messages([HumanMessage("hi"), AIMessage("there")])
    history.clear()
    assert history.messages == []
    assert history.memory.history() == []


async def test_async_twins_read_write_and_clear(make_history: Callable[..., Any]) -> None:
    history = make_history()
    await history.aadd_messages([HumanMessage("hi"), AIMessage("there")])
    assert _texts(await history.aget_messages()) == ["hi", "there"]
    await history.aclear()
    assert await history.aget_messages() == []


def test_view_is_a_snapshot_until_this_history_writes(make_history: Callable[..., Any]) -> None:
    history = make_history()
    history.add_messages([HumanMessage("one")])
    assert _texts(history.messages) == ["one"]
    history.memory.add("user", "written elsewhere")
    assert _texts(history.messages) == ["one"]  # stable within a turn
    history.refresh()
    assert _texts(history.messages) == ["one", "written elsewhere"]


def test_wraps_an_existing_memory(make_core_memory: Callable[..., TieredMemory]) -> None:
    memory = make_core_memory("s9", "kha")
    memory.add("user", "stored by the core")
    history = TieredChatMessageHistory(memory=memory)
    assert (history.session_id, history.user_id) == ("s9", "kha")
    assert _texts(history.messages) == ["stored by the core"]
    with pytest.raises(ConfigError):
        TieredChatMessageHistory(session_id="other", memory=memory)


def test_needs_ids_or_a_memory() -> None:
    with pytest.raises(ConfigError):
        TieredChatMessageHistory(session_id="s1")


def test_chat_model_as_summarizer_is_wrapped(tmp_path: Any) -> None:
    model = FakeListChatModel(responses=["- User is called Kha."])
    history = TieredChatMessageHistory(
        session_id="s1",
        user_id="kha",
        path=tmp_path,
        config=MemoryConfig(compaction="inline", window_tokens=60, summary_tokens=40),
        summarizer=model,
        embeddings=HashEmbedder(),
    )
    assert isinstance(history.memory.summarizer, LangChainSummarizer)
    for turn in range(8):
        history.add_messages([HumanMessage(f"My name is Kha, message {turn}.")])
    assert history.summary == "- User is called Kha."


def test_history_factory_shares_one_memory_per_user_and_session(
    memory_kwargs: dict[str, Any],
) -> None:
    factory = history_factory(**memory_kwargs)
    first = factory(session_id="s1", user_id="kha")
    second = factory(session_id="s1", user_id="kha")
    other = factory(session_id="s1", user_id="ann")
    assert first is not second
    assert first.memory is second.memory
    assert other.memory is not first.memory
    with pytest.raises(ConfigError):
        factory(session_id="", user_id="kha")


# --- under RunnableWithMessageHistory ------------------------------------------------------


@pytest.mark.parametrize("keyed", [True, False], ids=["history-key", "no-history-key"])
def test_runnable_with_history_stores_each_turn_once(
    memory_kwargs: dict[str, Any], keyed: bool
) -> None:
    model = ScriptedChatModel(responder=echo)
    chain = _chain(model, memory_kwargs, keyed=keyed)
    for text in ["My name is Kha.", "I like tea.", "What is my name?"]:
        chain.invoke(_ask(keyed, text), CONFIG)
    history = chain.get_session_history(session_id="s1", user_id="kha")
    stored = history.memory.history()
    assert [m.content for m in stored] == [
        "My name is Kha.",
        "Noted: My name is Kha.",
        "I like tea.",
        "Noted: I like tea.",
        "What is my name?",
        "Noted: What is my name?",
    ]
    last_prompt = model.calls[-1]
    assert "My name is Kha." in _texts(last_prompt)
    assert last_prompt[-1].text == "What is my name?"


@pytest.mark.parametrize("keyed", [True, False], ids=["history-key", "no-history-key"])
async def test_async_runnable_with_history_stores_each_turn_once(
    memory_kwargs: dict[str, Any], keyed: bool
) -> None:
    model = ScriptedChatModel(responder=echo)
    chain = _chain(model, memory_kwargs, keyed=keyed)
    for text in ["My name is Kha.", "I like tea."]:
        await chain.ainvoke(_ask(keyed, text), CONFIG)
    history = chain.get_session_history(session_id="s1", user_id="kha")
    assert [m.content for m in await history.memory.ahistory()] == [
        "My name is Kha.",
        "Noted: My name is Kha.",
        "I like tea.",
        "Noted: I like tea.",
    ]


def test_sessions_and_users_are_separate(memory_kwargs: dict[str, Any]) -> None:
    model = ScriptedChatModel(responder=echo)
    chain = _chain(model, memory_kwargs, keyed=True)
    chain.invoke({"input": "I am Kha."}, CONFIG)
    chain.invoke({"input": "I am Ann."}, {"configurable": {"user_id": "ann", "session_id": "s1"}})
    chain.invoke({"input": "Hello?"}, {"configurable": {"user_id": "kha", "session_id": "s2"}})
    assert _texts(model.calls[1]) == ["You are terse.", "I am Ann."]
    assert _texts(model.calls[2]) == ["You are terse.", "Hello?"]


def test_new_input_survives_a_summary_landing_mid_turn(tmp_path: Any) -> None:
    """The prefix stripped after the turn has the length of the view the model got."""

    class Flaky:
        healthy = False

        def summarize(self, request: SummaryRequest) -> str:
            if not self.healthy:
                raise ConnectionError("summarizer down")
            return ExtractiveSummarizer().summarize(request)

        async def asummarize(self, request: SummaryRequest) -> str:
            return self.summarize(request)

    summarizer = Flaky()
    factory = history_factory(
        path=tmp_path,
        config=MemoryConfig(
            compaction="inline", window_tokens=80, summary_tokens=20, retry_backoff=0.0
        ),
        summarizer=summarizer,
        embeddings=HashEmbedder(),
    )
    memory = factory(session_id="s1", user_id="kha").memory
    for turn in range(6):
        memory.add(
            "user",
            f"My fact number {turn} is {turn * 7}, and this sentence carries extra padding words.",
        )
    assert memory.summary == "" and memory.pending()
    seen = len(memory.context_messages())

    def model_turn(messages: list[BaseMessage]) -> str:
        summarizer.healthy = True
        memory.compact()  # the summary lands while the model is answering
        assert len(memory.context_messages()) == seen + 1  # the view grew by the summary
        return "Answer."

    chain = RunnableWithMessageHistory(
        RunnableLambda(model_turn), factory, history_factory_config=list(HISTORY_CONFIG_SPECS)
    )
    chain.invoke([HumanMessage("The new question.")], CONFIG)
    contents = [m.content for m in memory.history()]
    assert contents[-2:] == ["The new question.", "Answer."]
    assert len(contents) == len(set(contents))


@pytest.mark.parametrize("keyed", [True, False], ids=["history-key", "no-history-key"])
def test_streaming_stores_the_whole_answer_once(memory_kwargs: dict[str, Any], keyed: bool) -> None:
    model = GenericFakeChatModel(messages=iter(["Hello Kha, nice to meet you.", "Second."]))
    chain = _chain(model, memory_kwargs, keyed=keyed)
    chunks = list(chain.stream(_ask(keyed, "My name is Kha."), CONFIG))
    assert len(chunks) > 1
    history = chain.get_session_history(session_id="s1", user_id="kha")
    assert [(m.role, m.content) for m in history.memory.history()] == [
        ("user", "My name is Kha."),
        ("assistant", "Hello Kha, nice to meet you."),
    ]
    assert type(history.messages[-1]) is AIMessage


async def test_async_streaming_stores_the_whole_answer_once(memory_kwargs: dict[str, Any]) -> None:
    model = GenericFakeChatModel(messages=iter(["Hello Kha, nice to meet you."]))
    chain = _chain(model, memory_kwargs, keyed=False)
    chunks = [chunk async for chunk in chain.astream([HumanMessage("My name is Kha.")], CONFIG)]
    assert len(chunks) > 1
    history = chain.get_session_history(session_id="s1", user_id="kha")
    assert [m.content for m in await history.memory.ahistory()] == [
        "My name is Kha.",
        "Hello Kha, nice to meet you.",
    ]


@pytest.mark.parametrize("keyed", [True, False], ids=["history-key", "no-history-key"])
def test_fifty_turns_stay_within_budget_and_summary_keeps_the_name(
    tmp_path: Any, keyed: bool
) -> None:
    config = MemoryConfig(
        compaction="inline", window_tokens=200, summary_tokens=100, retry_backoff=0.0
    )
    counter = token_counter(config.model)
    model = ScriptedChatModel(responder=lambda m: f"Here is a short note about turn {len(m)}.")
    kwargs = {
        "path": tmp_path,
        "config": config,
        "summarizer": ExtractiveSummarizer(),
        "embeddings": HashEmbedder(),
    }
    chain = _chain(model, kwargs, keyed=keyed)
    chain.invoke(_ask(keyed, "My name is Kha."), CONFIG)
    for turn in range(1, 50):
        chain.invoke(_ask(keyed, f"Tell me something about topic {turn}"), CONFIG)
    assert len(model.calls) == 50
    budget = config.window_tokens + config.summary_tokens + 40  # + prefix, priming, new input
    sizes = [counter.count_messages(to_core_messages(prompt)) for prompt in model.calls]
    assert max(sizes) <= budget, sizes
    history = chain.get_session_history(session_id="s1", user_id="kha")
    assert "Kha" in history.summary
    summary_message = model.calls[-1][1 if keyed else 0]  # after the prompt's own system line
    assert summary_message.id == "summary:s1"
    assert "Kha" in summary_message.text
    assert len(history.memory.history()) == 100
