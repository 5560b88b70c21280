"""TieredSession under the Agents SDK's own Runner, with a scripted fake model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.memory import Session
from agents_fakes import ScriptedModel, call_output, last_user_text

from openai_agents_tiered_memory import TieredSession, create_recall_tool
from tiered_memory import ConfigError, InvalidMessageError, MemoryConfig, TieredMemory
from tiered_memory.tokens import token_counter

SessionFactory = Callable[..., TieredSession]


def _echo(items: list[dict[str, Any]]) -> str:
    return f"Noted: {last_user_text(items)[:40]}"


def test_it_is_an_agents_session(make_session: SessionFactory) -> None:
    assert isinstance(make_session(), Session)


async def test_runner_sees_earlier_turns_from_the_session(
    make_session: SessionFactory, run_config: RunConfig
) -> None:
    model = ScriptedModel(_echo)
    agent = Agent(name="assistant", instructions="Be brief.", model=model)
    session = make_session()
    await Runner.run(agent, "My name is Kha.", session=session, run_config=run_config)
    result = await Runner.run(agent, "What is my name?", session=session, run_config=run_config)
    assert result.final_output == "Noted: What is my name?"
    texts = [json.dumps(item) for item in model.inputs[-1]]
    assert any("My name is Kha." in text for text in texts)
    assert [i.get("role") for i in await session.history_items()] == [
        "user", "assistant", "user", "assistant",
    ]  # fmt: skip


async def test_the_model_gets_summary_and_window_within_budget(
    make_session: SessionFactory, run_config: RunConfig
) -> None:
    model = ScriptedModel(_echo)
    agent = Agent(name="assistant", model=model)
    session = make_session()
    await Runner.run(agent, "My name is Kha and I live in Hanoi.", session=session,
                     run_config=run_config)  # fmt: skip
    for turn in range(15):
        await Runner.run(agent, f"Tell me something about topic {turn}, please.",
                         session=session, run_config=run_config)  # fmt: skip
    shown = await session.get_items()
    await Runner.run(agent, "And the last one?", session=session, run_config=run_config)
    history = await session.history_items()
    assert len(history) == 34  # lossless
    sent = model.inputs[-1]
    assert sent == [*shown, {"role": "user", "content": "And the last one?"}]
    assert len(shown) < len(history) - 2
    assert shown[0]["role"] == "system" and "Kha" in shown[0]["content"]  # the summary
    config = session.memory.config
    counter = token_counter(config.model)
    view = session.memory.context_messages()
    assert view[0].id.startswith("summary:")
    assert sum(counter.count_message(m) for m in view[1:]) <= config.window_tokens
    assert counter.count_message(view[0]) <= config.summary_tokens


async def test_tool_calls_and_results_are_kept_as_given(
    make_session: SessionFactory, run_config: RunConfig
) -> None:
    @function_tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    def respond(items: list[dict[str, Any]]) -> list[Any] | str:
        if items[-1].get("type") == "function_call_output":
            return f"It is {items[-1]['output']}."
        return [call_output("multiply", '{"a": 6, "b": 7}', len(items))]

    model = ScriptedModel(respond)
    agent = Agent(name="calc", model=model, tools=[multiply])
    session = make_session(window_tokens=2000)
    result = await Runner.run(agent, "6 times 7?", session=session, run_config=run_config)
    assert result.final_output == "It is 42."
    history = await session.history_items()
    kinds = [item.get("type", item.get("role")) for item in history]
    assert kinds == ["user", "function_call", "function_call_output", "message"]
    assert history[1]["call_id"] == history[2]["call_id"]
    assert history[1]["arguments"] == '{"a": 6, "b": 7}'
    core = session.memory.history()
    assert core[1].tool_calls[0].id == core[2].tool_call_id  # a pair in the core's model
    await Runner.run(agent, "And again?", session=session, run_config=run_config)
    assert [i.get("type") for i in model.inputs[-1][:4]] == [
        None, "function_call", "function_call_output", "message",
    ]  # fmt: skip


async def test_tool_pairs_stay_whole_when_the_window_moves(
    make_session: SessionFactory, run_config: RunConfig
) -> None:
    @function_tool
    def lookup(topic: str) -> str:
        """Look a topic up."""
        return f"Facts about {topic}: " + "lorem ipsum " * 8

    def respond(items: list[dict[str, Any]]) -> list[Any] | str:
        if items[-1].get("type") == "function_call_output":
            return "Done."
        return [call_output("lookup", json.dumps({"topic": last_user_text(items)}), len(items))]

    model = ScriptedModel(respond)
    agent = Agent(name="lookup", model=model, tools=[lookup])
    session = make_session()
    for turn in range(8):
        await Runner.run(agent, f"topic {turn}", session=session, run_config=run_config)
        for sent in model.inputs:
            calls = {i["call_id"] for i in sent if i.get("type") == "function_call"}
            results = [i["call_id"] for i in sent if i.get("type") == "function_call_output"]
            assert set(results) <= calls


async def test_get_items_limit_is_the_newest_items(make_session: SessionFactory) -> None:
    session = make_session(window_tokens=2000)
    await session.add_items([
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ])  # fmt: skip
    assert await session.get_items(limit=2) == [
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    assert await session.get_items(limit=0) == []
    assert len(await session.get_items(limit=10)) == 3
    with pytest.raises(InvalidMessageError):
        await session.get_items(limit=-1)


async def test_pop_item_removes_the_newest_everywhere(make_session: SessionFactory) -> None:
    session = make_session(window_tokens=2000)
    await session.add_items([{"role": "user", "content": "keep me"}])
    await session.add_items([{"role": "user", "content": "My secret word is pineapple."}])
    popped = await session.pop_item()
    assert popped == {"role": "user", "content": "My secret word is pineapple."}
    assert await session.history_items() == [{"role": "user", "content": "keep me"}]
    other = TieredMemory(session_id="s2", user_id="kha", path=session.memory.path,
                         config=session.memory.config, embedder=session.memory.embedder)  # fmt: skip
    assert not [h for h in other.recall("secret word pineapple") if "pineapple" in h.text]
    assert await session.pop_item() is not None
    assert await session.pop_item() is None


async def test_clear_session_empties_it(make_session: SessionFactory) -> None:
    session = make_session()
    await session.add_items([{"role": "user", "content": "hello"}])
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.history_items() == []


async def test_a_bad_batch_stores_nothing(make_session: SessionFactory) -> None:
    session = make_session()
    with pytest.raises(InvalidMessageError):
        await session.add_items([{"role": "user", "content": "fine"}, {"role": "robot"}])
    with pytest.raises(InvalidMessageError):
        await session.add_items([{"role": "user", "content": "fine"}, object()])  # type: ignore[list-item]
    with pytest.raises(InvalidMessageError):
        await session.add_items({"role": "user", "content": "not a list"})  # type: ignore[arg-type]
    assert await session.history_items() == []


async def test_items_of_unknown_types_round_trip(make_session: SessionFactory) -> None:
    session = make_session(window_tokens=2000)
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [
        {"type": "summary_text", "text": "The user wants a name."}
    ]}  # fmt: skip
    parts = {"role": "user", "content": [{"type": "input_text", "text": "Hi"},
                                         {"type": "input_image", "image_url": "data:x"}]}  # fmt: skip
    await session.add_items([parts, reasoning])
    assert await session.history_items() == [parts, reasoning]
    assert [m.content for m in session.memory.history()] == [
        "Hi\n[image]",
        "The user wants a name.",
    ]


async def test_redact_all_keeps_no_raw_copy(make_session: SessionFactory) -> None:
    session = make_session(secrets="redact_all", window_tokens=2000)
    secret = "my key is sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    await session.add_items([{"role": "user", "content": secret}])
    stored = session.memory.history()
    assert stored[0].metadata == {}
    assert "sk-proj-abcdefghijklmnopqrstuvwxyz" not in json.dumps(await session.history_items())


def test_memory_and_its_arguments_are_not_both_accepted(tmp_path: Any) -> None:
    memory = TieredMemory(session_id="s1", user_id="kha", path=tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        TieredSession("s1", "kha", memory=memory, config=MemoryConfig())
    with pytest.raises(ConfigError, match="not session"):
        TieredSession("s2", "kha", memory=memory)
    assert TieredSession("s1", "kha", memory=memory).memory is memory


async def test_the_agent_recalls_an_earlier_session(
    make_session: SessionFactory, run_config: RunConfig
) -> None:
    monday = make_session("monday")
    await monday.add_items([{"role": "user", "content": "My dog is called Biscuit."}])
    monday.close()
    make_session("monday", user_id="ann").memory.add("user", "My dog is called Rex.")

    def respond(items: list[dict[str, Any]]) -> list[Any] | str:
        if items[-1].get("type") == "function_call_output":
            return f"From memory: {items[-1]['output']}"
        arguments = {"query": "name of my dog", "k": None, "since": None, "until": None}
        return [call_output("recall_memory", json.dumps(arguments), len(items))]

    tuesday = make_session("tuesday")
    model = ScriptedModel(respond)
    agent = Agent(name="assistant", model=model, tools=[create_recall_tool(tuesday)])
    result = await Runner.run(agent, "What is my dog called?", session=tuesday,
                              run_config=run_config)  # fmt: skip
    assert model.tool_names[0] == ["recall_memory"]
    assert "Biscuit" in result.final_output and "session: monday" in result.final_output
    assert "Rex" not in result.final_output


async def test_the_recall_tool_answers_bad_arguments_with_text(
    make_session: SessionFactory,
) -> None:
    tool = create_recall_tool(make_session())
    answer = await tool.on_invoke_tool(None, json.dumps({"query": "x", "since": "last week"}))  # type: ignore[arg-type]
    assert answer.startswith("Error:") and "ISO 8601" in answer
    assert (await tool.on_invoke_tool(None, "{}")).startswith("Error:")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        create_recall_tool("kha")  # type: ignore[arg-type]
