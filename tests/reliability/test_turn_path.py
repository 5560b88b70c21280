"""The user's turn path (issue 11): bounded reads however far behind the summary is, and
background work that waits for the gaps between turns.

Behaviour, not timing thresholds: what the turn reads, what the worker does while a turn is in
flight, and that a prompt built from the bounded read equals one built from the whole state.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tm_reliability import Blocking

from tiered_memory import MemoryConfig, Message, Resources, TieredMemory, ToolCall
from tiered_memory.window import build_context
from tiered_memory.worker import Foreground


def _conversation(rng: random.Random, turns: int) -> list[dict[str, object]]:
    """Chat with tool calls, some answered only after an unrelated message."""
    out: list[dict[str, object]] = []
    late: list[str] = []
    for n in range(turns):
        roll = rng.random()
        if roll < 0.15:
            call = ToolCall(id=f"c{n}", name="lookup", arguments=f'{{"q": {n}}}')
            out.append({"role": "assistant", "content": "", "tool_calls": [call]})
            if rng.random() < 0.5:
                late.append(call.id)  # its result comes later, after other messages
            else:
                out.append({"role": "tool", "content": f"result {n} " * 5, "tool_call_id": call.id})
        elif late and roll < 0.3:
            out.append({"role": "tool", "content": f"late {n} " * 5, "tool_call_id": late.pop()})
        else:
            role = "user" if n % 2 else "assistant"
            out.append({"role": role, "content": f"message {n} " + "word " * rng.randint(1, 40)})
    return out


@pytest.mark.parametrize("seed", range(4))
def test_prompt_from_the_bounded_read_equals_the_prompt_from_the_whole_state(
    tmp_path: Path, seed: int
) -> None:
    """While the summarizer is behind, context() reads only the newest pending messages; what
    it shows must be exactly what the whole state would show, tool units intact."""
    rng = random.Random(seed)
    summarizer = Blocking()
    config = MemoryConfig(
        window_tokens=rng.choice([60, 120, 300]),
        summary_tokens=rng.choice([40, 80, 200]),
        compaction="background",
        index_long_term=False,
        close_timeout=0.1,
    )
    resources = Resources()
    memory = TieredMemory("s", "u", tmp_path, config, summarizer=summarizer, resources=resources)
    try:
        counter = memory.counter
        for message in _conversation(rng, 70):
            memory.add_messages([message])  # type: ignore[list-item]
            full = memory._store.load("u", "s")  # everything, as before the change
            assert memory.context_messages() == build_context(full, config, counter)
            assert memory.stats.pending_messages == len(full.pending)
            assert memory.stats.pending_tokens == full.pending_tokens
        tail = memory._store.load("u", "s", pending_tail_tokens=10)
        full = memory._store.load("u", "s")
        assert len(full.pending) > 20, "the test must run far behind"
        assert tail.pending == full.pending[-len(tail.pending) :]
        assert tail.pending_count == len(full.pending)
    finally:
        summarizer.release.set()
        memory.close()
        resources.close(timeout=1)


def test_the_append_path_does_not_read_pending_messages(tmp_path: Path) -> None:
    """However many messages are pending, a write reads the window's rows, never the pending
    ones (they are only counted); the prompt reads a bounded tail of them."""
    from sqlalchemy import event

    summarizer = Blocking()
    config = MemoryConfig(
        window_tokens=60, summary_tokens=40, compaction="background", index_long_term=False,
        secrets="keep", close_timeout=0.1,
    )  # fmt: skip
    resources = Resources()
    memory = TieredMemory("s", "u", tmp_path, config, summarizer=summarizer, resources=resources)
    try:
        for n in range(80):
            memory.add("user", f"message {n} " + "word " * 10)
        pending = len(memory.pending())
        assert pending > 40
        me = threading.get_ident()
        fetched: list[int] = []

        def rows_fetched(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            select = statement.lstrip().upper().startswith("SELECT")
            if threading.get_ident() == me and select and "tm_messages.content" in statement:
                fetched.append(1)

        event.listen(memory._store.engine, "after_cursor_execute", rows_fetched)
        try:
            memory.add("user", "one more " + "word " * 10)
            writes = len(fetched)
            fetched.clear()
            view = memory.context_messages()
        finally:
            event.remove(memory._store.engine, "after_cursor_execute", rows_fetched)
        assert writes == 1  # the window, read once
        state = memory._store.load("u", "s", pending_tail_tokens=100)
        assert len(state.pending) < pending  # the prompt's read is bounded...
        assert view == build_context(memory._store.load("u", "s"), config, memory.counter)
    finally:
        summarizer.release.set()
        memory.close()
        resources.close(timeout=1)


def test_foreground_gap_waits_for_turns_and_gives_up_at_its_deadline() -> None:
    foreground = Foreground(quiet=0.01, max_defer=5.0)
    assert foreground.wait_gap(time.monotonic() + 1.0)  # nothing in flight: a gap at once

    started = threading.Event()
    finish = threading.Event()

    def turn() -> None:
        with foreground.turn():
            started.set()
            finish.wait(5)

    thread = threading.Thread(target=turn)
    thread.start()
    started.wait(5)
    assert not foreground.wait_gap(time.monotonic() + 0.05)  # a turn in flight: no gap
    timer = threading.Timer(0.05, finish.set)
    timer.start()
    begin = time.monotonic()
    assert foreground.wait_gap(time.monotonic() + 5.0)  # the turn ends: the gap comes
    assert time.monotonic() - begin < 4.0
    thread.join()


def test_background_work_waits_while_a_turn_is_in_flight(
    tmp_path: Path, make_memory: Callable[..., TieredMemory]
) -> None:
    """Tier-3 indexing (embedded Chroma holds the interpreter lock while it writes) and the
    summarizer run between turns, not during them; and never later than the deferral bound."""
    resources = Resources()
    resources.foreground = Foreground(quiet=0.01, max_defer=1.5)
    memory = make_memory(
        compaction="background", index_batch=1, resources=resources, window_tokens=1000
    )
    try:
        with resources.foreground.turn():  # a long turn of another session of this process
            memory.add("user", "My favourite colour is teal.")
            time.sleep(0.5)
            assert memory._store.unindexed("kha", 10), "indexed during the turn"
        deadline = time.monotonic() + 10
        while memory._store.unindexed("kha", 10) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not memory._store.unindexed("kha", 10), "not indexed in the gap after the turn"

        # Turns that never stop: the work runs anyway once its deferral bound has passed.
        stop = threading.Event()

        def busy() -> None:
            while not stop.is_set():
                with resources.foreground.turn():
                    time.sleep(0.005)

        thread = threading.Thread(target=busy)
        thread.start()
        try:
            memory.add("user", "I moved to Lisbon.")
            deadline = time.monotonic() + 10
            while memory._store.unindexed("kha", 10) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not memory._store.unindexed("kha", 10), "starved by a busy process"
        finally:
            stop.set()
            thread.join()
    finally:
        memory.close()
        resources.close(timeout=1)


def test_async_turns_count_as_turns(tmp_path: Path) -> None:
    import asyncio

    resources = Resources()
    seen: list[int] = []
    original = resources.foreground.turn

    def spy():  # type: ignore[no-untyped-def]
        seen.append(1)
        return original()

    resources.foreground.turn = spy  # type: ignore[method-assign]
    config = MemoryConfig(window_tokens=200, summary_tokens=50, index_long_term=False)
    memory = TieredMemory("s", "u", tmp_path, config, resources=resources)

    async def main() -> None:
        await memory.aadd("user", "hello")
        await memory.acontext()
        await memory.arecall("hello")

    try:
        asyncio.run(main())
        assert len(seen) == 3
    finally:
        memory.close()
        resources.close(timeout=1)


def test_messages_are_whole_in_the_prompt_tail(tmp_path: Path) -> None:
    """A tool result whose call is far back in the pending range still comes with its call."""
    summarizer = Blocking()
    config = MemoryConfig(
        window_tokens=60, summary_tokens=200, compaction="background", index_long_term=False
    )
    resources = Resources()
    memory = TieredMemory("s", "u", tmp_path, config, summarizer=summarizer, resources=resources)
    try:
        call = ToolCall(id="far", name="lookup", arguments="{}")
        memory.add_messages([Message(role="assistant", content="", tool_calls=(call,))])
        for n in range(30):
            memory.add("user", f"filler {n} " + "word " * 8)
        memory.add_messages([Message(role="tool", content="the far result", tool_call_id="far")])
        for n in range(8):
            memory.add("user", f"after {n} " + "word " * 8)
        view = memory.context_messages()
        shown = {m.tool_call_id for m in view if m.role == "tool"}
        calls = {c.id for m in view for c in m.tool_calls}
        assert shown <= calls
        full = memory._store.load("u", "s")
        assert view == build_context(full, config, memory.counter)
    finally:
        summarizer.release.set()
        memory.close()
        resources.close(timeout=1)


def test_the_worker_checkpoints_the_wal_so_turns_rarely_do(
    tmp_path: Path, make_memory: Callable[..., TieredMemory]
) -> None:
    from tiered_memory.store.schema import WAL_AUTOCHECKPOINT_PAGES

    memory = make_memory(compaction="background", index_batch=1)
    try:
        for n in range(20):
            memory.add("user", f"message {n} " + "word " * 30)
        memory.compact()
        memory.flush()
        store = memory._store
        if not store.is_sqlite:
            pytest.skip("SQLite's WAL only")
        raw = store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
                WAL_AUTOCHECKPOINT_PAGES
            )
            store.checkpoint()
            busy, log, done = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert busy == 0 and log == done  # every frame of the log is in the database
        finally:
            raw.close()
    finally:
        memory.close()


def test_closing_the_resources_ends_the_wait_for_a_gap(
    tmp_path: Path, make_memory: Callable[..., TieredMemory]
) -> None:
    """A process shutting down while turns are still in flight finishes its jobs now, instead
    of waiting out their deferral (which here is far longer than close's timeout)."""
    resources = Resources()
    resources.foreground = Foreground(quiet=0.01, max_defer=60.0)
    memory = make_memory(compaction="background", index_batch=1, resources=resources)
    release = threading.Event()
    entered = threading.Event()

    def endless_turn() -> None:
        with resources.foreground.turn():
            entered.set()
            release.wait(30)

    thread = threading.Thread(target=endless_turn)
    thread.start()
    try:
        entered.wait(5)
        memory.add("user", "Remember the ferry leaves at 7.")
        time.sleep(0.2)  # the job is now waiting for a gap that will not come
        assert resources.close(timeout=10)  # True: nothing was left running
    finally:
        release.set()
        thread.join()


class _Numbered:
    """A summarizer whose every summary is new: 'summary N of K messages'."""

    def __init__(self) -> None:
        self.calls = 0

    def summarize(self, request: object) -> str:
        self.calls += 1
        return f"summary {self.calls} of {len(request.messages)} messages"  # type: ignore[attr-defined]

    async def asummarize(self, request: object) -> str:
        return self.summarize(request)


def test_the_turn_read_rebuilds_every_field_a_message_was_stored_with(tmp_path: Path) -> None:
    """The turn path reads the window by column position (not through ``row_to_stored``): the
    messages it returns equal those stored, and those the full-row read returns."""
    from datetime import datetime, timezone

    config = MemoryConfig(index_long_term=False, secrets="keep")
    resources = Resources()
    memory = TieredMemory("s", "u", tmp_path, config, resources=resources)
    try:
        when = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone.utc)
        call = ToolCall(id="c1", name="lookup", arguments='{"q": "tea \\u00e9"}')
        sent = [
            Message(role="user", content="hi\x00 there", name="ann", id="m1", created_at=when,
                    metadata={"k": [1, "x"]}),
            Message(role="assistant", content="", tool_calls=(call,), id="m2", created_at=when),
            Message(role="tool", content="result", tool_call_id="c1", id="m3", created_at=when),
        ]  # fmt: skip
        memory.add_messages(sent)
        assert memory.window() == sent
        assert memory.context_messages() == sent
        assert memory.history() == sent
        state = memory._store.load("u", "s", pending_tail_tokens=10)
        assert [i.seq for i in state.window] == [0, 1, 2]
        assert [i.tokens for i in state.window] == [memory.counter.count_message(m) for m in sent]
    finally:
        memory.close()
        resources.close(timeout=1)


@pytest.mark.parametrize("turns_first", [True, False])
def test_another_memory_writing_the_session_is_seen_by_the_next_context(
    tmp_path: Path, turns_first: bool
) -> None:
    """Two memories on one path with their own resources (engines, caches: as two processes):
    each one's next context shows what the other wrote, its messages and its new summary."""
    config = MemoryConfig(
        window_tokens=80, summary_tokens=60, index_long_term=False, compaction="inline"
    )
    summarizer = _Numbered()
    a_resources, b_resources = Resources(), Resources()
    a = TieredMemory("s", "u", tmp_path, config, summarizer=summarizer, resources=a_resources)
    b = TieredMemory("s", "u", tmp_path, config, summarizer=summarizer, resources=b_resources)
    try:
        if turns_first:
            a.add("user", "from a")
            assert [m["content"] for m in a.context()] == ["from a"]
        seen: set[str] = set()
        for n in range(30):
            writer, reader = (a, b) if n % 3 else (b, a)
            writer.add("user", f"turn {n} " + "word " * 8)
            view = reader.context()
            assert view == writer.context()
            assert view[-1]["content"] == f"turn {n} " + "word " * 8
            if view[0]["role"] == "system":
                seen.add(view[0]["content"])
        assert summarizer.calls >= 2 and len(seen) >= 2  # new summaries were seen by both
        assert f"summary {summarizer.calls} of" in a.context()[0]["content"]
        b.forget(message_id=b.window()[-1].id)
        assert a.context() == b.context()
    finally:
        a.close()
        b.close()
        a_resources.close(timeout=1)
        b_resources.close(timeout=1)
