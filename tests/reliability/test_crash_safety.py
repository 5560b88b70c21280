"""Crash safety: a writer SIGKILLed at random moments, restarted on the same session, many times.

The writer (``_crash_writer.py``) uses a tiny window so nearly every add evicts and compacts (the
extractive summarizer, HashEmbedder), and prints each message id once ``add()`` returned. Kills land
anywhere: inside the append transaction, between the session store and Chroma, inside a Chroma
write, between the summarizer and the summary commit.
"""

from __future__ import annotations

import queue
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tm_reliability import MemoryFactory, assert_consistent, chroma_records, config_json

from tiered_memory.recall import record_key
from tiered_memory.recall.timeline import FACTS_SESSION

KILLS = 18
SEED = 1729
STARTUP_TIMEOUT = 180.0  # a safety net for a wedged child, not a measurement


def _lines(child: subprocess.Popen[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _kill_at_random(
    spawn: Callable[..., subprocess.Popen[str]], args: list[str], rng: random.Random
) -> list[str]:
    """One writer life: start, wait until it is ready, SIGKILL it at a random moment."""
    child = spawn("_crash_writer.py", *args)
    lines = _lines(child)
    first = lines.get(timeout=STARTUP_TIMEOUT)
    if first != "ready":
        pytest.fail(
            f"writer did not start: {first!r}\n{child.stderr.read() if child.stderr else ''}"
        )
    output: list[str | None] = []
    if rng.random() < 0.3:  # anywhere in the first add (opening Chroma, re-indexing the backlog)
        time.sleep(rng.uniform(0.0, 2.5))
    else:  # in steady state: a random moment after the first acknowledged add
        output.append(lines.get(timeout=STARTUP_TIMEOUT))
        time.sleep(rng.uniform(0.0, 1.0))
    if child.poll() is not None:  # it must die by our hand, never by an error of its own
        pytest.fail(f"writer exited with {child.returncode}: {child.stderr.read()}")  # type: ignore[union-attr]
    child.send_signal(signal.SIGKILL)
    child.wait()
    while (line := lines.get(timeout=STARTUP_TIMEOUT)) is not None:
        output.append(line)
    assert all(line and line.startswith("ack ") for line in output), output
    return [line.removeprefix("ack ") for line in output if line]


@pytest.mark.slow
def test_sigkilled_writer_loses_and_duplicates_nothing(
    make_memory: MemoryFactory, spawn: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    mem = make_memory("crash", "kha", path=tmp_path, window_tokens=60, summary_tokens=40)
    rng = random.Random(SEED)
    acked: list[str] = []
    in_flight = 0  # lives killed after storing a message but before acknowledging it
    for _ in range(KILLS):
        resume = int(acked[-1][1:]) + 1 if acked else 0
        args = [config_json(mem), str(tmp_path), mem.user_id, mem.session_id, str(resume)]
        acked += _kill_at_random(spawn, args, rng)
        in_flight += len(mem.history()) > len(acked)  # re-sent by the next life: stored once

    mem.recall("deadline")  # indexes whatever the last kill left unindexed
    ids = assert_consistent(mem)
    print(
        f"\ncrash safety: {KILLS} SIGKILLs ({in_flight} with a message in flight), "
        f"{len(acked)} acknowledged, {len(ids)} stored, {mem.stats.summarizer_calls} summaries"
    )

    assert acked, "no writer life acknowledged anything"
    assert ids[: len(acked)] == acked  # every acknowledged message, once, in order
    assert ids[len(acked) :] in ([], [f"m{len(acked):05d}"])  # at most the one in flight
    assert mem.store.unindexed(mem.user_id) == []  # type: ignore[attr-defined]
    records = [meta for _, _, meta in chroma_records(mem)]
    turns = [meta for meta in records if meta["session_id"] != FACTS_SESSION]
    facts = [meta["message_id"] for meta in records if meta["session_id"] == FACTS_SESSION]
    stored = sorted(meta["message_id"] for meta in turns)
    assert stored == sorted(ids)  # Tier 3 holds every message exactly once
    assert len(set(facts)) == len(facts)  # and each fact drawn from them once
    assert mem.long_term.count(mem.user_id) == len(ids) + len(facts)
    assert {record_key(mem.session_id, i) for i in ids} == {
        record_key(meta["session_id"], meta["message_id"]) for meta in turns
    }
    assert mem.summary and mem.stats.summarizer_calls > 0
