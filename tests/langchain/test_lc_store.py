"""TieredMemoryStore: LangGraph's BaseStore contract (checked against its InMemoryStore), recall
ranking, users, a LangGraph graph with ``store=`` and LangMem's memory tools in an agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore
from langmem import create_manage_memory_tool, create_search_memory_tool
from lc_fakes import ScriptedChatModel
from typing_extensions import TypedDict

from langchain_tiered_memory import TieredMemoryStore, create_recall_tool
from tiered_memory import HashEmbedder, InvalidMessageError, MemoryConfig, TieredMemory

CONFIG = MemoryConfig(compaction="inline")


@pytest.fixture
def store(tmp_path: Path) -> TieredMemoryStore:
    return TieredMemoryStore(path=tmp_path, config=CONFIG, embeddings=HashEmbedder())


def _chat_memory(tmp_path: Path, session_id: str, user_id: str = "kha") -> TieredMemory:
    return TieredMemory(session_id=session_id, user_id=user_id, path=tmp_path, config=CONFIG,
                        embedder=HashEmbedder())  # fmt: skip


# --- the BaseStore contract, against LangGraph's own InMemoryStore ---------------------------

SCRIPT: list[Any] = [
    PutOp(("memories", "kha"), "a", {"content": "My dog is called Biscuit.", "n": 1}),
    PutOp(("memories", "kha"), "b", {"content": "I prefer tea.", "n": 5, "tags": ["drink"]}),
    PutOp(("memories", "ann"), "a", {"content": "My dog is called Rex.", "n": 3}),
    PutOp(("memories", "ann"), "b", {"content": "I live in Hue.", "n": 4}),
    PutOp(("prefs", "ui", "kha"), "theme", {"theme": "dark", "meta": {"source": "settings"}}),
    GetOp(("memories", "kha"), "a"),
    GetOp(("memories", "kha"), "missing"),
    PutOp(("memories", "kha"), "a", {"content": "My dog is called Pepper.", "n": 2}),
    GetOp(("memories", "kha"), "a"),
    PutOp(("memories", "ann"), "a", None),
    GetOp(("memories", "ann"), "a"),
    PutOp(("memories", "ann"), "gone", None),  # deleting what is not there
    SearchOp(("memories",), filter={"n": {"$gte": 2}}),
    SearchOp(("memories", "kha"), filter={"tags": ["drink"]}),
    SearchOp(("prefs",), filter={"meta": {"source": "settings"}}),
    SearchOp(("prefs",), filter={"theme": {"$ne": "dark"}}),
    SearchOp(("memories",), limit=1, offset=1),
    SearchOp(("nothing",)),
    ListNamespacesOp(),
    ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("memories",)),)),
    ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("*", "kha")),)),
    ListNamespacesOp(max_depth=1),
    ListNamespacesOp(limit=1, offset=1),
]


def _comparable(result: Any) -> Any:
    """Results without timestamps and, for searches, in a stable order."""
    if result is None:
        return None
    if isinstance(result, list):
        shown = [_comparable(r) for r in result]
        return sorted(shown, key=json.dumps) if shown and isinstance(shown[0], dict) else shown
    if isinstance(result, tuple):
        return result
    return {"namespace": list(result.namespace), "key": result.key, "value": result.value}


def test_results_match_langgraphs_in_memory_store(store: TieredMemoryStore) -> None:
    reference = InMemoryStore()
    for op in SCRIPT:
        ours, theirs = store.batch([op])[0], reference.batch([op])[0]
        if isinstance(op, SearchOp) and op.offset:
            assert len(ours) == len(theirs)  # which item is second depends on the order
            continue
        assert _comparable(ours) == _comparable(theirs), op


async def test_abatch_matches_batch(store: TieredMemoryStore) -> None:
    ops = [
        PutOp(("memories", "kha"), "a", {"content": "My dog is called Biscuit."}),
        GetOp(("memories", "kha"), "a"),
        SearchOp(("memories", "kha"), query="dog"),
        ListNamespacesOp(),
    ]
    results = await store.abatch(ops)
    assert results[0] is None
    assert results[1].value == {"content": "My dog is called Biscuit."}
    assert [item.key for item in results[2]] == ["a"]
    assert results[3] == [("memories", "kha")]
    assert (await store.aget(("memories", "kha"), "a")) == store.get(("memories", "kha"), "a")


def test_an_update_keeps_created_at_and_moves_updated_at(store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "a", {"content": "one"})
    first = store.get(("memories", "kha"), "a")
    store.put(("memories", "kha"), "a", {"content": "two"})
    second = store.get(("memories", "kha"), "a")
    assert first and second and second.value == {"content": "two"}
    assert second.created_at == first.created_at and second.updated_at > first.updated_at


def test_items_persist_in_a_new_store(tmp_path: Path, store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "a", {"content": "My dog is called Biscuit."})
    store.close()
    reopened = TieredMemoryStore(path=tmp_path, config=CONFIG, embeddings=HashEmbedder())
    assert reopened.get(("memories", "kha"), "a") is not None
    assert [i.key for i in reopened.search(("memories", "kha"), query="dog")] == ["a"]


def test_bad_input_is_refused(store: TieredMemoryStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph", "kha"), "a", {"x": "y"})
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b", "kha"), "a", {"x": "y"})
    with pytest.raises(InvalidMessageError):
        store.put(("memories", "kha"), "a", {"x": object()})
    with pytest.raises(InvalidMessageError):
        store.search(("memories",), filter={"n": {"$regex": "x"}})
    with pytest.raises(NotImplementedError):
        store.put(("memories", "kha"), "a", {"x": "y"}, ttl=5)
    assert store.list_namespaces() == []


# --- search through recall -------------------------------------------------------------------


def test_query_search_ranks_by_recall_with_float_scores(store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "dog", {"content": "My dog is called Biscuit."})
    store.put(("memories", "kha"), "tea", {"content": "I prefer green tea in the morning."})
    store.put(("memories", "kha"), "job", {"content": "I work as a nurse in Hanoi."})
    results = store.search(("memories", "kha"), query="what is my dog called?", limit=2)
    assert len(results) == 2 and results[0].key == "dog"
    assert all(type(r.score) is float for r in results)
    assert results[0].score >= results[1].score


def test_query_search_never_crosses_users(store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "a", {"content": "My dog is called Biscuit."})
    store.put(("memories", "ann"), "a", {"content": "My dog is called Rex."})
    values = [r.value["content"] for r in store.search(("memories", "ann"), query="dog")]
    assert values == ["My dog is called Rex."]


def test_updates_and_deletes_reach_tier3(tmp_path: Path, store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "a", {"content": "My dog is called Biscuit."})
    store.put(("memories", "kha"), "a", {"content": "My cat is called Tom."})
    store.put(("memories", "kha"), "b", {"content": "I like sailing."})
    store.delete(("memories", "kha"), "b")
    recall = create_recall_tool(_chat_memory(tmp_path, "chat"))
    answer = recall.invoke({"query": "dog Biscuit cat Tom sailing", "k": 10})
    assert "Tom" in answer and "Biscuit" not in answer and "sailing" not in answer


def test_index_false_and_index_fields(store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "hidden", {"content": "My dog is called Biscuit."}, index=False)
    store.put(("memories", "kha"), "title", {"title": "dog", "body": "unrelated"}, index=["title"])
    found = store.search(("memories", "kha"), query="dog Biscuit")
    assert [r.key for r in found] == ["title"]
    assert {r.key for r in store.search(("memories", "kha"))} == {"hidden", "title"}


def test_query_and_filter_together(store: TieredMemoryStore) -> None:
    store.put(("memories", "kha"), "a", {"content": "My dog is called Biscuit.", "kind": "pet"})
    store.put(("memories", "kha"), "b", {"content": "My dog food is Acme.", "kind": "shop"})
    results = store.search(("memories", "kha"), query="dog", filter={"kind": "shop"})
    assert [r.key for r in results] == ["b"]


def test_store_items_are_recallable_from_the_users_chats(
    tmp_path: Path, store: TieredMemoryStore
) -> None:
    store.put(("memories", "kha"), "a", {"content": "The user's dog is called Biscuit."})
    answer = create_recall_tool(_chat_memory(tmp_path, "chat")).invoke({"query": "my dog"})
    assert "Biscuit" in answer and "role: assistant (memory)" in answer
    other = create_recall_tool(_chat_memory(tmp_path, "chat", user_id="ann"))
    assert "Biscuit" not in other.invoke({"query": "my dog"})


def test_user_label_chooses_the_users_position(tmp_path: Path) -> None:
    store = TieredMemoryStore(path=tmp_path, config=CONFIG, embeddings=HashEmbedder(),
                              user_label=0)  # fmt: skip
    store.put(("kha", "memories"), "a", {"content": "My dog is called Biscuit."})
    assert store.user_of(("kha", "memories")) == "kha"
    answer = create_recall_tool(_chat_memory(tmp_path, "chat")).invoke({"query": "my dog"})
    assert "Biscuit" in answer


# --- through LangGraph and LangMem --------------------------------------------------------


class _State(TypedDict):
    text: str
    found: list[str]


def test_a_graph_uses_it_as_runtime_store(store: TieredMemoryStore) -> None:
    def remember(state: _State, runtime: Runtime[Any]) -> dict[str, Any]:
        assert runtime.store is not None
        runtime.store.put(("memories", "kha"), "fact", {"content": state["text"]})
        return {}

    def look_up(state: _State, runtime: Runtime[Any]) -> dict[str, Any]:
        assert runtime.store is not None
        hits = runtime.store.search(("memories", "kha"), query="what is my dog called")
        return {"found": [hit.value["content"] for hit in hits]}

    graph = StateGraph(_State)
    graph.add_node("remember", remember)
    graph.add_node("look_up", look_up)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "look_up")
    graph.add_edge("look_up", END)
    app = graph.compile(store=store)
    result = app.invoke({"text": "My dog is called Biscuit.", "found": []})
    assert result["found"] == ["My dog is called Biscuit."]


def _langmem_script(messages: list[Any]) -> AIMessage | str:
    """Save a memory on the first turn; search memories on the second; then answer."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return f"Tool said: {last.text}"
    if "remember" in last.text.lower():
        args: dict[str, Any] = {"content": "The user's dog is called Biscuit.", "action": "create"}
        name = "manage_memory"
    else:
        args, name = {"query": "the user's dog"}, "search_memory"
    call = {"name": name, "args": args, "id": f"call_{len(messages)}", "type": "tool_call"}
    return AIMessage("", tool_calls=[call])


def test_langmem_tools_write_and_search_it_in_an_agent(
    tmp_path: Path, store: TieredMemoryStore
) -> None:
    namespace = ("memories", "{langgraph_user_id}")
    agent = create_agent(
        ScriptedChatModel(responder=_langmem_script),
        tools=[create_manage_memory_tool(namespace), create_search_memory_tool(namespace)],
        store=store,
    )
    kha = {"configurable": {"langgraph_user_id": "kha"}}
    saved = agent.invoke({"messages": [HumanMessage("Remember my dog is Biscuit.")]}, kha)
    assert saved["messages"][-1].text.startswith("Tool said: created memory")
    [item] = store.search(("memories", "kha"))
    assert item.value == {"content": "The user's dog is called Biscuit."}

    found = agent.invoke({"messages": [HumanMessage("What is my dog called?")]}, kha)
    assert "Biscuit" in found["messages"][-1].text
    ann = {"configurable": {"langgraph_user_id": "ann"}}
    other = agent.invoke({"messages": [HumanMessage("What is my dog called?")]}, ann)
    assert "Biscuit" not in other["messages"][-1].text
    # and the chat recall tool of the same user finds what LangMem saved
    answer = create_recall_tool(_chat_memory(tmp_path, "chat")).invoke({"query": "my dog"})
    assert "Biscuit" in answer


def test_a_query_over_several_namespaces_and_users(
    tmp_path: Path, store: TieredMemoryStore
) -> None:
    store.put(("notes", "home", "kha"), "a", {"content": "My dog is called Biscuit."})
    store.put(("notes", "work", "kha"), "b", {"content": "My manager's dog is called Rex."})
    store.put(("notes", "home", "ann"), "c", {"content": "My dog is called Pepper."})
    _chat_memory(tmp_path, "chat").add("user", "I once had a dog called Max.")  # not an item
    found = store.search(("notes",), query="dog called")
    assert sorted(r.key for r in found) == ["a", "b", "c"]
    assert {r.key for r in store.search(("notes", "home"), query="dog")} == {"a", "c"}
