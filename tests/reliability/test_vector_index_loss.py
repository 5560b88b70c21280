"""A user's vector index that a crash left unreadable, or that was lost, is rebuilt from the
session store: recall still answers, every message and fact is back in Tier 3 once, and no other
user's index is touched. (CI met the first case: a writer SIGKILLed while Chroma rewrote
``index_metadata.pickle`` left it empty, and every later recall of that user failed.)"""

from __future__ import annotations

import logging
import pickle
import shutil
import sqlite3
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tm_reliability import chroma_records

from tiered_memory import HashEmbedder, MemoryConfig, Resources, StoreError, TieredMemory
from tiered_memory.errors import VectorIndexLostError
from tiered_memory.recall.chroma import _is_unreadable
from tiered_memory.recall.hnsw_files import torn_reason
from tiered_memory.recall.timeline import FACTS_SESSION

FILLER = [f"Note {n}: the weather in town {n} was mild today." for n in range(8)]


def _memory(path: Path, resources: Resources, user_id: str = "kha") -> TieredMemory:
    settings = MemoryConfig(compaction="inline", window_tokens=40, summary_tokens=60)
    return TieredMemory("s1", user_id, path, settings, embedder=HashEmbedder(), resources=resources)


def _fill(path: Path, user_id: str, key_line: str) -> int:
    """One process's life: the user's messages, then closed. Returns how many records Tier 3
    holds for the user (messages and facts)."""
    with Resources() as resources:
        mem = _memory(path, resources, user_id)
        mem.add("user", key_line)
        for line in FILLER:
            mem.add("user", line)
        mem.flush()
        held = mem.long_term.count(user_id)
        mem.close()
    return held


def _vector_dir(path: Path, user_id: str) -> Path:
    """The directory of the HNSW segment of ``user_id``'s collection (read from Chroma's
    catalogue with plain sqlite, as a crash would find it)."""
    with Resources() as resources:
        name = _memory(path, resources, user_id).long_term.collection_name(user_id)  # type: ignore[attr-defined]
    with sqlite3.connect(path / "chroma" / "chroma.sqlite3") as db:
        (segment,) = db.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE c.name = ? AND s.scope = 'VECTOR'",
            (name,),
        ).fetchone()
    return path / "chroma" / str(segment)


def _truncate(name: str) -> Callable[[Path], None]:
    def corrupt(directory: Path) -> None:
        (directory / name).write_bytes(b"")

    return corrupt


def _cut(name: str, keep: float) -> Callable[[Path], None]:
    """A write killed part-way: the file holds only its first ``keep`` share."""

    def corrupt(directory: Path) -> None:
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[: int(len(data) * keep)])

    return corrupt


def _header(directory: Path) -> tuple[int, int]:
    """(elements, bytes per data_level0.bin row) from chroma-hnswlib's header.bin."""
    count, row = struct.unpack_from("=iQQQQ", (directory / "header.bin").read_bytes())[3:5]
    return int(count), int(row)


def _cut_in_last_element(
    name: str, bytes_per_element: Callable[[int], int]
) -> Callable[[Path], None]:
    """A write killed in the middle of the last element: rows past it may be preallocated, so
    only a file that ends before it is torn."""

    def corrupt(directory: Path) -> None:
        count, row = _header(directory)
        size = bytes_per_element(row)
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[: (count - 1) * size + size // 2])

    return corrupt


def _garble_neighbours(directory: Path) -> None:
    """Level-0 neighbour ids far past the last element: Chroma's loader takes them and its
    first query walks off the index (SIGSEGV; chroma-core/chroma#7238)."""
    count, row = _header(directory)
    rows = np.fromfile(directory / "data_level0.bin", dtype=np.uint32).reshape(-1, row // 4)
    rows[:count, 1:5] = 0x0FFFFFFF
    rows.tofile(directory / "data_level0.bin")


def _count_more(directory: Path) -> None:
    """The header of a write that grew the index, over files from before it."""
    header = bytearray((directory / "header.bin").read_bytes())
    count = struct.unpack_from("=Q", header, 20)[0]
    struct.pack_into("=Q", header, 20, count + 3)
    (directory / "header.bin").write_bytes(bytes(header))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "metadata pickle emptied (the CI case)": _truncate("index_metadata.pickle"),
    "metadata pickle cut short": _cut("index_metadata.pickle", 0.5),
    "header emptied": _truncate("header.bin"),
}  # shapes Chroma itself refuses; the ones below it may load (and then crash the process)
TORN: dict[str, Callable[[Path], None]] = {
    "header counting elements not written": _count_more,
    "data_level0.bin emptied": _truncate("data_level0.bin"),
    "data_level0.bin cut in its last element": _cut_in_last_element(
        "data_level0.bin", lambda row: row
    ),
    "length.bin cut in its last element": _cut_in_last_element("length.bin", lambda row: 4),
    "link_lists.bin cut short": _cut("link_lists.bin", 0.7),
    "neighbour ids past the end": _garble_neighbours,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=list(CORRUPTIONS))
def test_an_unreadable_index_is_rebuilt_and_recall_answers(
    tmp_path: Path, corrupt: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    held = _fill(tmp_path, "kha", "My API key is 123-ALPHA, keep it safe.")
    other = _fill(tmp_path, "ana", "My API key is 999-OMEGA.")
    corrupt(_vector_dir(tmp_path, "kha"))
    with Resources() as resources, caplog.at_level(logging.WARNING, "tiered_memory"):
        mem = _memory(tmp_path, resources)
        hits = mem.recall("What was my API key?", exclude_window=False)
        assert any("123-ALPHA" in h.text for h in hits)
        assert all("OMEGA" not in h.text for h in hits)
        assert "rebuilding it from the session store" in caplog.text
        assert mem.long_term.count("kha") == held  # every message and fact, once
        ana = _memory(tmp_path, resources, "ana")
        assert any("999-OMEGA" in h.text for h in ana.recall("my API key?", exclude_window=False))
        assert ana.long_term.count("ana") == other
        assert "'ana'" not in caplog.text  # the other user's index was never rebuilt


@pytest.mark.parametrize("tear", TORN.values(), ids=list(TORN))
def test_torn_index_files_are_dropped_unread_and_rebuilt(
    tmp_path: Path, tear: Callable[[Path], None], spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    """In a fresh process, as after the crash that tore them (CI met a SIGSEGV there)."""
    held = _fill(tmp_path, "kha", "My API key is 123-ALPHA, keep it safe.")
    other = _fill(tmp_path, "ana", "My API key is 999-OMEGA.")
    tear(_vector_dir(tmp_path, "kha"))
    child = spawn("_recall_once.py", str(tmp_path), "kha", "What was my API key?")
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, f"exit {child.returncode}: {err[-2000:]}"
    assert "123-ALPHA" in out and "OMEGA" not in out
    assert f"count {held}" in out.splitlines()  # every message and fact again, once
    assert "are torn" in err and "rebuilding it from the session store" in err
    child = spawn("_recall_once.py", str(tmp_path), "ana", "my API key?")
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0 and "999-OMEGA" in out and f"count {other}" in out.splitlines()
    assert "torn" not in err  # the other user's files were whole and left alone


def test_whole_index_files_are_not_taken_for_torn(tmp_path: Path) -> None:
    for user in ("kha", "ana"):
        _fill(tmp_path, user, f"My name is {user}.")
        assert torn_reason(_vector_dir(tmp_path, user)) is None
    assert torn_reason(tmp_path / "no-such-segment") is None


class _Touches:
    """Unpickled by a plain ``pickle.load``, it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_pickle_that_names_code_is_torn_and_never_run(tmp_path: Path) -> None:
    _fill(tmp_path, "kha", "My name is Kha.")
    segment = _vector_dir(tmp_path, "kha")
    marker = tmp_path / "ran"
    (segment / "index_metadata.pickle").write_bytes(pickle.dumps({"id_to_label": _Touches(marker)}))
    assert "names" in (torn_reason(segment) or "")
    assert not marker.exists()


def test_writing_into_an_unreadable_index_rebuilds_it_and_keeps_the_new_message(
    tmp_path: Path,
) -> None:
    held = _fill(tmp_path, "kha", "My locker code is 4471.")
    _truncate("index_metadata.pickle")(_vector_dir(tmp_path, "kha"))
    with Resources() as resources:
        mem = _memory(tmp_path, resources)
        mem.add("user", "And my bike lock code is 8812.")
        mem.flush()  # the write meets the unreadable index first
        assert mem.store.unindexed("kha") == []  # type: ignore[attr-defined]
        assert mem.long_term.count("kha") >= held + 1
        keys = [meta["message_id"] for _, _, meta in chroma_records(mem)]
        assert len(keys) == len(set(keys))
        assert any("8812" in h.text for h in mem.recall("bike lock code", exclude_window=False))
        assert any("4471" in h.text for h in mem.recall("locker code", exclude_window=False))


def test_a_lost_chroma_directory_gets_its_facts_back_too(tmp_path: Path) -> None:
    held = _fill(tmp_path, "kha", "I moved to Lisbon last spring, near the river.")
    with Resources() as resources:
        facts = [
            meta
            for _, _, meta in chroma_records(_memory(tmp_path, resources))
            if meta["session_id"] == FACTS_SESSION
        ]
    assert facts, "the filler should have produced at least one fact"
    shutil.rmtree(tmp_path / "chroma")
    with Resources() as resources:
        mem = _memory(tmp_path, resources)
        assert mem.recall("Where do I live?", exclude_window=False)
        assert mem.long_term.count("kha") == held  # messages and facts


@pytest.mark.parametrize(
    "message",
    [
        "Could not connect to tenant default_tenant",
        "Connection refused",
        "timed out",
        "Collection [x] does not exist",
        "database is locked",
    ],
)
def test_other_store_errors_are_not_taken_for_a_lost_index(message: str) -> None:
    assert not _is_unreadable(RuntimeError(message))


def test_the_lost_index_error_is_a_store_error() -> None:
    assert issubclass(VectorIndexLostError, StoreError)


def test_a_second_loss_during_the_rebuild_is_raised_not_looped(tmp_path: Path) -> None:
    _fill(tmp_path, "kha", "My API key is 123-ALPHA.")
    with Resources() as resources:
        mem = _memory(tmp_path, resources)
        store: Any = mem.long_term
        calls = {"n": 0}
        real = store.upsert

        def always_lost(user_id: str, records: Any) -> None:
            calls["n"] += 1
            raise VectorIndexLostError("index unreadable (test)")

        store.upsert = always_lost
        mem.add("user", "One more message.")  # (inline compaction tries to index it here too)
        calls["n"] = 0
        mem.flush()  # logged, never raised: the message waits for the next attempt
        assert calls["n"] == 2  # the write, then the rebuild's first write: no loop
        store.upsert = real
        assert mem.store.unindexed("kha") != []  # type: ignore[attr-defined]  # still waiting
        mem.flush()
        assert mem.store.unindexed("kha") == []  # type: ignore[attr-defined]
