"""Whatever the window cuts, the history view never splits a tool call from its results."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tiered_memory import TieredChatMessageHistory
from tiered_memory import ExtractiveSummarizer, HashEmbedder, MemoryConfig

_words = st.integers(1, 60).map(lambda n: " ".join(f"w{i}" for i in range(n)))

# A unit: a user message, a plain answer, or an assistant message with 1-3 calls + their results.
_unit = st.one_of(
    st.tuples(st.just("user"), _words),
    st.tuples(st.just("answer"), _words),
    st.tuples(st.just("tools"), st.lists(_words, min_size=1, max_size=3)),
)


def _messages(units: list[tuple[str, object]]) -> list[list[BaseMessage]]:
    out: list[list[BaseMessage]] = []
    calls = 0
    for kind, payload in units:
        if kind == "user":
            out.append([HumanMessage(str(payload))])
        elif kind == "answer":
            out.append([AIMessage(str(payload))])
        else:
            results = list(payload)  # type: ignore[call-overload]
            ids = [f"call_{calls + i}" for i in range(len(results))]
            calls += len(results)
            call = AIMessage(
                "",
                tool_calls=[
                    {"name": "f", "args": {"i": i}, "id": cid, "type": "tool_call"}
                    for i, cid in enumerate(ids)
                ],
            )
            out.append(
                [call, *(ToolMessage(r, tool_call_id=c) for r, c in zip(results, ids, strict=True))]
            )
    return out


def _whole(view: list[BaseMessage]) -> bool:
    body = [m for m in view if not isinstance(m, SystemMessage)]
    issued: set[str] = set()
    answered: set[str] = set()
    for message in body:
        if isinstance(message, AIMessage):
            issued.update(c["id"] for c in message.tool_calls)
        elif isinstance(message, ToolMessage):
            if message.tool_call_id not in issued:
                return False
            answered.add(message.tool_call_id)
    return issued == answered


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    units=st.lists(_unit, min_size=1, max_size=14),
    window=st.integers(16, 240),
    batch=st.integers(1, 4),
)
def test_tool_pairs_are_never_split_whatever_the_window_cuts(
    units: list[tuple[str, object]], window: int, batch: int
) -> None:
    groups = _messages(units)
    with tempfile.TemporaryDirectory() as directory:
        history = TieredChatMessageHistory(
            session_id="s1",
            user_id="kha",
            path=directory,
            config=MemoryConfig(
                compaction="inline", window_tokens=window, summary_tokens=32, index_long_term=False
            ),
            summarizer=ExtractiveSummarizer(),
            embeddings=HashEmbedder(),
        )
        for start in range(0, len(groups), batch):
            history.add_messages([m for group in groups[start : start + batch] for m in group])
            view = history.messages
            assert _whole(view), view
        assert len(history.history_messages()) == sum(len(g) for g in groups)
