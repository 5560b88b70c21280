"""Bulk import (``tiered_memory.importer`` and ``tiered-memory import``): real SQLite + Chroma."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory
from tiered_memory.cli import main
from tiered_memory.importer import ImportFileError, check_import_file, import_history

HISTORY = [
    {"role": "user", "content": "Hi, I'm Kha. I use ChromaDB for my study assistant.", "id": "h1",
     "created_at": "2025-03-01T10:00:00+00:00"},
    {"role": "assistant", "content": "ChromaDB runs embedded, no server needed.",
     "created_at": "2025-03-01T10:00:05+00:00"},
    {"role": "assistant", "content": "", "id": "h3",
     "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"q": "chroma"}}]},
    {"role": "tool", "content": "found 3 pages", "tool_call_id": "c1", "name": "lookup"},
    {"role": "user", "content": "My first demo is due March 3rd.", "session_id": "march",
     "metadata": {"source": "export"}},
]  # fmt: skip


def _write(path: Path, records: list[Any], extra: str = "") -> Path:
    lines = [json.dumps(r) if not isinstance(r, str) else r for r in records]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def _memory(path: Path, session: str) -> TieredMemory:
    return TieredMemory(session, "kha", path, embedder=HashEmbedder())


def _import(file: Path, store: Path, **kwargs: Any) -> Any:
    return import_history(
        file, store, user_id="kha", session_id="feb", embedder=HashEmbedder(), **kwargs
    )


def test_import_stores_every_field_in_order_and_honours_ids(tmp_path: Path) -> None:
    file = _write(tmp_path / "h.jsonl", HISTORY)
    report = _import(file, tmp_path / "m")
    assert (report.lines, report.stored, report.skipped, report.sessions) == (5, 5, 0, 2)
    feb = _memory(tmp_path / "m", "feb").history()
    assert [m.content for m in feb] == [r["content"] for r in HISTORY[:4]]
    assert feb[0].id == "h1" and feb[2].id == "h3"
    assert feb[0].created_at.isoformat() == "2025-03-01T10:00:00+00:00"
    assert feb[2].tool_calls[0].name == "lookup" and feb[3].tool_call_id == "c1"
    march = _memory(tmp_path / "m", "march").history()
    assert [m.content for m in march] == ["My first demo is due March 3rd."]
    assert dict(march[0].metadata) == {"source": "export"}


def test_imported_messages_are_recalled(tmp_path: Path) -> None:
    file = _write(tmp_path / "h.jsonl", HISTORY)
    report = _import(file, tmp_path / "m")
    assert report.indexed == 5
    memory = _memory(tmp_path / "m", "other")
    hits = memory.recall("ChromaDB study assistant", k=3)
    assert any(hit.message_id == "h1" for hit in hits)


def test_reimport_skips_known_ids_also_for_lines_without_an_id(tmp_path: Path) -> None:
    file = _write(tmp_path / "h.jsonl", HISTORY)
    _import(file, tmp_path / "m")
    again = _import(file, tmp_path / "m")
    assert (again.stored, again.skipped) == (0, 5)
    assert len(_memory(tmp_path / "m", "feb").history()) == 4


def test_identical_lines_without_ids_are_distinct_messages(tmp_path: Path) -> None:
    same = {"role": "user", "content": "ok"}
    file = _write(tmp_path / "h.jsonl", [same, same, same])
    assert _import(file, tmp_path / "m").stored == 3
    assert _import(file, tmp_path / "m").stored == 0


def test_an_interrupted_import_is_completed_by_running_it_again(tmp_path: Path) -> None:
    records = [{"role": "user", "content": f"message number {n}"} for n in range(30)]
    _import(_write(tmp_path / "part.jsonl", records[:12]), tmp_path / "m", chunk=5)
    report = _import(_write(tmp_path / "all.jsonl", records), tmp_path / "m", chunk=5)
    assert (report.stored, report.skipped) == (18, 12)
    history = _memory(tmp_path / "m", "feb").history()
    assert [m.content for m in history] == [r["content"] for r in records]


def test_a_bad_line_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    good = [{"role": "user", "content": "fine"}] * 2
    bad = [*good, "{not json", {"role": "robot", "content": "x"}, {"role": "user", "text": "x"}]
    file = _write(tmp_path / "h.jsonl", bad)
    with pytest.raises(ImportFileError) as caught:
        _import(file, tmp_path / "m")
    error = caught.value
    assert [line for line, _ in error.errors] == [3, 4, 5]
    assert "not valid JSON" in error.errors[0][1]
    assert "unknown role" in error.errors[1][1]
    assert "unknown field(s) ['text']" in error.errors[2][1]
    assert f"{file}:3:" in str(error)
    assert _memory(tmp_path / "m", "feb").history() == []


def test_lines_need_a_session_and_a_user(tmp_path: Path) -> None:
    file = _write(tmp_path / "h.jsonl", [{"role": "user", "content": "hello"}])
    with pytest.raises(ImportFileError, match="session_id"):
        check_import_file(file, user_id="kha")
    with pytest.raises(ImportFileError, match="user_id"):
        check_import_file(file, session_id="s")
    assert check_import_file(file, user_id="kha", session_id="s") == {("kha", "s"): 1}


def test_an_id_twice_in_one_session_is_refused(tmp_path: Path) -> None:
    line = {"role": "user", "content": "a", "id": "x"}
    file = _write(tmp_path / "h.jsonl", [line, {**line, "content": "b"}])
    with pytest.raises(ImportFileError, match="twice") as caught:
        check_import_file(file, user_id="kha", session_id="s")
    assert caught.value.errors == [(2, "message id 'x' appears twice in session 's'")]


def test_users_are_kept_apart(tmp_path: Path) -> None:
    records = [
        {"role": "user", "content": "I live in Hanoi", "user_id": "kha"},
        {"role": "user", "content": "I live in Lyon", "user_id": "lan"},
    ]
    report = _import(_write(tmp_path / "h.jsonl", records), tmp_path / "m")
    assert report.indexed == 2
    assert [m.content for m in _memory(tmp_path / "m", "feb").history()] == ["I live in Hanoi"]
    lan = TieredMemory("other", "lan", tmp_path / "m", embedder=HashEmbedder())
    assert [h.text for h in lan.recall("where do I live", k=5)] == ["I live in Lyon"]


def test_without_index_the_next_flush_indexes_the_import(tmp_path: Path) -> None:
    file = _write(tmp_path / "h.jsonl", HISTORY)
    report = _import(file, tmp_path / "m", index=False)
    assert (report.stored, report.indexed) == (5, 0)
    memory = _memory(tmp_path / "m", "feb")
    assert len(memory.store.unindexed("kha", 100)) == 5
    memory.flush()
    assert memory.store.unindexed("kha", 100) == []


def test_a_long_history_is_windowed_and_its_secrets_sealed(tmp_path: Path) -> None:
    records = [{"role": "user", "content": f"note {n}: the sky was clear"} for n in range(200)]
    records.append({"role": "user", "content": "My API key is sk-proj-Zq8vN2xR7tK4mW9pL3sJ6hB1"})
    config = MemoryConfig(window_tokens=200)
    _import(_write(tmp_path / "h.jsonl", records), tmp_path / "m", config=config, chunk=64)
    memory = TieredMemory("feb", "kha", tmp_path / "m", config, embedder=HashEmbedder())
    window = memory.window()
    assert window[-1].content.startswith("My API key is")
    assert sum(memory.counter.count_message(m) for m in window) <= 200
    assert len(memory.pending()) + len(window) == 201  # older ones wait for the summarizer
    raw = memory.store.history("kha", "feb")[-1].content
    assert "sk-proj-" not in raw  # the log holds the vault placeholder, as add_messages does
    assert "sk-proj-Zq8vN2xR7tK4mW9pL3sJ6hB1" in memory.history()[-1].content


def test_the_cli_imports_with_progress_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(tmp_path / "h.jsonl", HISTORY)
    assert main(["import", str(file), "--path", str(tmp_path / "m"), "--user-id", "kha",
                 "--session-id", "feb", "--no-index"]) == 0  # fmt: skip
    out = capsys.readouterr()
    assert "5 messages stored, 0 already there" in out.out
    assert "storing" in out.err  # the progress bar
    assert main(["import", str(file), "--check", "--user-id", "kha", "--session-id", "x"]) == 0
    assert "5 valid messages in 2 session(s)" in capsys.readouterr().out


def test_the_cli_exits_1_naming_the_bad_line(tmp_path: Path) -> None:
    file = _write(tmp_path / "h.jsonl", [{"role": "user", "content": "ok"}, "[1, 2]"])
    done = subprocess.run(
        [sys.executable, "-m", "tiered_memory.cli", "import", str(file), "--path",
         str(tmp_path / "m"), "--user-id", "kha", "--session-id", "s"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{file}:2: expected a JSON object, got list" in done.stderr
    assert "nothing was imported" in done.stderr
