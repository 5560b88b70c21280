"""Background compaction (the default): the user's turn never waits on the summarizer, and none of
the exactly-once and crash-safety guarantees is given up. Behaviour, not timing thresholds: the
latency figures are a benchmark (``tiered-memory bench latency``)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tm_reliability import (
    LedgerSummarizer,
    MemoryFactory,
    assert_consistent,
    config_json,
    ledger_ids,
    summary_ids,
)

from tiered_memory import SummarizerError, SummaryRequest, TieredMemory

WRITERS = 4
MESSAGES = 60
CHROMA_SERVER = bool(os.environ.get("TM_TEST_CHROMA_HOST"))


class Gate:
    """A summarizer that blocks until the test opens the gate (a hung, then recovered model)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def summarize(self, request: SummaryRequest) -> str:
        self.calls += 1
        self.started.set()
        self.open.wait(60)
        lines = [request.previous_summary, *(m.content for m in request.messages)]
        return "\n".join(line for line in lines if line) or "summary"

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)


def _background(make_memory: MemoryFactory, **kwargs: object) -> TieredMemory:
    kwargs.setdefault("window_tokens", 60)
    return make_memory(compaction="background", **kwargs)


def test_add_returns_while_the_summarizer_hangs(make_memory: MemoryFactory) -> None:
    gate = Gate()
    mem = _background(make_memory, summarizer=gate, summarizer_timeout=30.0)
    try:
        for n in range(20):
            mem.add("user", f"Message {n}: my order number {n} ships on day {n}.")
        assert gate.started.wait(10), "the worker never called the summarizer"
        assert not gate.open.is_set()  # every add above returned while the model hung
        shown = mem.context()
        assert shown[-1]["content"].startswith("Message 19")
        budget = mem.config.window_tokens + mem.config.summary_tokens + 3
        assert mem.counter.count_messages(mem.context_messages()) <= budget
        assert mem.stats.pending_messages > 0
    finally:
        gate.open.set()
    mem.compact()
    assert mem.pending() == [] and "Message 0" in mem.summary


async def test_aadd_returns_while_the_summarizer_hangs(make_memory: MemoryFactory) -> None:
    gate = Gate()
    mem = _background(make_memory, summarizer=gate, summarizer_timeout=30.0)
    try:
        for n in range(20):
            await mem.aadd("user", f"Message {n}: my order number {n} ships on day {n}.")
        assert not gate.open.is_set()
    finally:
        gate.open.set()
    await mem.acompact()
    assert mem.pending() == []


def test_compact_waits_until_caught_up_or_raises(make_memory: MemoryFactory) -> None:
    slow = LedgerSummarizer(delay=0.05)
    mem = _background(make_memory, summarizer=slow, summary_tokens=50_000)
    for n in range(30):
        mem.add("user", f"message number {n} of a long chat", id=f"m{n:03d}")
    mem.compact()
    assert mem.pending() == []
    assert summary_ids(mem.summary) == [m.id for m in mem.history()][: -len(mem.window())]

    failing = LedgerSummarizer(fail_every=1)
    broken = _background(make_memory, session_id="s2", summarizer=failing)
    for n in range(30):
        broken.add("user", f"message number {n} of a long chat")
    with pytest.raises(SummarizerError):
        broken.compact()
    assert broken.pending()  # nothing lost: still pending for a later try


def test_close_returns_within_its_bound_and_leaves_the_rest_pending(
    make_memory: MemoryFactory,
) -> None:
    gate = Gate()
    mem = _background(make_memory, summarizer=gate, summarizer_timeout=30.0, close_timeout=0.5)
    try:
        for n in range(20):
            mem.add("user", f"Message {n}: the meeting room is {n}.")
        assert gate.started.wait(10)
        started = time.monotonic()
        mem.close()
        assert time.monotonic() - started < 10.0  # bounded (0.5 s asked), not the 30 s timeout
        assert mem.pending()
    finally:
        gate.open.set()


def test_the_lag_is_reported_and_logged(
    make_memory: MemoryFactory, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate()
    mem = _background(make_memory, summarizer=gate, summary_lag_warning=0.05)
    try:
        for n in range(10):
            mem.add("user", f"Message {n}: the meeting room is {n}.")
        time.sleep(0.1)
        with caplog.at_level("WARNING", logger="tiered_memory"):
            mem.add("user", "one more")
        assert mem.stats.behind_seconds > 0 and mem.stats.pending_messages > 0
        assert "behind" in caplog.text
    finally:
        gate.open.set()


def test_four_threads_with_a_slow_summarizer_summarize_each_message_once(
    make_memory: MemoryFactory, tmp_path: Path, ledger: Path
) -> None:
    mems = [
        _background(
            make_memory,
            session_id="shared",
            path=tmp_path,
            window_tokens=80,
            summary_tokens=50_000,
            summarizer=LedgerSummarizer(ledger, delay=0.02),
        )
        for _ in range(WRITERS)
    ]
    start = threading.Barrier(WRITERS)

    def write(writer: int) -> None:
        start.wait()
        for n in range(MESSAGES):
            mems[writer].add("user", f"writer {writer} message {n}", id=f"w{writer}-{n:04d}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    _assert_each_summarized_once(mems[0], ledger, WRITERS * MESSAGES)


@pytest.mark.slow
def test_four_processes_with_a_slow_summarizer_summarize_each_message_once(
    make_memory: MemoryFactory,
    spawn: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
    ledger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TM_LEDGER_DELAY", "0.02")
    mem = _background(
        make_memory, session_id="shared", path=tmp_path, window_tokens=80,
        summary_tokens=50_000, summarizer=LedgerSummarizer(ledger),
        index_long_term=CHROMA_SERVER,
    )  # fmt: skip
    args = [config_json(mem), str(tmp_path), mem.user_id, mem.session_id]
    children = [
        spawn("_concurrent_writer.py", *args, str(w), str(MESSAGES), str(ledger))
        for w in range(WRITERS)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        assert child.wait(timeout=300) == 0, child.stderr.read() if child.stderr else ""
    _assert_each_summarized_once(mem, ledger, WRITERS * MESSAGES)


@pytest.mark.slow
def test_sigkill_during_background_compaction_loses_and_repeats_nothing(
    make_memory: MemoryFactory,
    spawn: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
    ledger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TM_LEDGER_DELAY", "0.3")  # kills land while the worker is summarizing
    mem = _background(
        make_memory, session_id="shared", path=tmp_path, window_tokens=80,
        summary_tokens=50_000, summarizer=LedgerSummarizer(ledger), index_long_term=False,
    )  # fmt: skip
    args = [config_json(mem), str(tmp_path), mem.user_id, mem.session_id]
    for round_ in range(3):
        child = spawn("_concurrent_writer.py", *args, str(round_), str(MESSAGES), str(ledger))
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        deadline = time.monotonic() + 60
        while not ledger.exists() or len(ledger_ids(ledger)) <= round_ * 5:
            assert time.monotonic() < deadline, "the child never summarized"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    mem.compact()
    ids = assert_consistent(mem)
    assert mem.pending() == []
    evicted = ids[: len(ids) - len(mem.window())]
    assert summary_ids(mem.summary) == evicted  # each evicted message in the summary exactly once


def _assert_each_summarized_once(mem: TieredMemory, ledger: Path, expected: int) -> None:
    mem.compact()
    ids = assert_consistent(mem)
    assert len(ids) == expected
    assert mem.pending() == []
    evicted = ids[: len(ids) - len(mem.window())]
    assert summary_ids(mem.summary) == evicted
    sent = ledger_ids(ledger)
    assert len(sent) == len(set(sent)), "a message was sent to the summarizer twice"
    assert set(sent) == set(evicted)
