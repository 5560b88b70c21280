"""Tenant isolation: whatever user A wrote, user B never gets any of it back.

Randomized: user ids, session ids (often the same for both users), texts (B often writes the very
same texts as A, so that A's vectors are B's nearest neighbours). B searches with A's own texts
through recall, format_recall_hits and both adapters' recall tools.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tm_reliability import MemoryFactory

from tiered_memory import TieredMemory, format_recall_hits

ids = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
texts = st.text(min_size=1, max_size=200).filter(lambda s: s.strip())
ISOLATION = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _recall_tools(mem: TieredMemory) -> list[Callable[[str], str]]:
    """The adapters' recall tools over ``mem``, as ``query -> text`` (those installed)."""
    tools: list[Callable[[str], str]] = []
    try:
        from langchain_tiered_memory import create_recall_tool as lc_tool
    except ImportError:
        pass
    else:
        lc = lc_tool(mem, k=20)
        tools.append(lambda query: str(lc.invoke({"query": query})))
    try:
        from llamaindex_tiered_memory import create_recall_tool as li_tool
    except ImportError:
        pass
    else:
        li = li_tool(mem, k=20)
        tools.append(lambda query: str(li.call(query=query).content))
    return tools


@ISOLATION
@given(
    user_a=ids,
    user_b=ids,
    session_a=ids,
    other_session=ids,
    same_session=st.booleans(),
    texts_a=st.lists(texts, min_size=1, max_size=5),
    b_copies_a=st.booleans(),
)
def test_user_b_never_recalls_anything_of_user_a(
    make_memory: MemoryFactory,
    user_a: str,
    user_b: str,
    session_a: str,
    other_session: str,
    same_session: bool,
    texts_a: list[str],
    b_copies_a: bool,
) -> None:
    assume(user_a != user_b)
    session_b = session_a if same_session else other_session
    canary = f"canary {uuid.uuid4().hex}"  # a text only A ever writes
    a = make_memory(session_a, user_a, window_tokens=16)  # A's messages leave A's window
    written_by_a = [a.add("user", text).id for text in [*texts_a, canary]]
    b = make_memory(session_b, user_b)
    if b_copies_a:
        for text in texts_a:
            b.add("user", text)
    owned_by_b = set(b.store.message_ids(user_b))  # type: ignore[attr-defined]
    assert not owned_by_b & set(written_by_a)

    for query in [*texts_a, canary]:
        hits = b.recall(query, k=20, exclude_window=False)
        assert all(h.user_id == user_b for h in hits)
        assert {h.message_id for h in hits} <= owned_by_b
        assert canary not in format_recall_hits(hits)
        for tool in _recall_tools(b):
            assert canary not in tool(query)
    # A itself does find its canary: the search works, B is just not allowed to see it.
    found = a.recall(canary, k=20, exclude_window=False)
    assert any(h.message_id == written_by_a[-1] for h in found)
