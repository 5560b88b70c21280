"""Bulk import of a chat history: ``tiered-memory import FILE`` (JSONL, one message a line).

Each line is an object with ``role`` and ``content`` and, optionally, ``id``, ``created_at``
(ISO 8601), ``name``, ``tool_calls``, ``tool_call_id``, ``metadata``, and the ``session_id`` and
``user_id`` it belongs to (else the command line's). The import runs in three phases:

1. **check**: the whole file is read and every line validated; one bad line (not JSON, an unknown
   field, an invalid message, no session or user, an id twice in one session) stops the import
   before anything is stored, with every bad line named (up to :data:`MAX_REPORTED_ERRORS`).
2. **store**: the messages go to the session log in chunks, each chunk one transaction (secrets
   sealed in the vault, the window evicted as by ``add_messages``). A line without an ``id``
   gets a stable one from its user, session, role, content, time and occurrence, so running the
   same import again skips what is already stored (known ids are skipped), also after a crash.
3. **index**: Tier 3 (embedding, vector store, lexical postings) in chunks. ``index=False``
   skips it: the messages wait in the log and the session's next write, ``flush`` or recall
   indexes them, as after an interrupted import.

The summary (Tier 2) is not written during an import: the older messages are pending for the
summarizer and the session's next write, or ``compact()``, catches up.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import MemoryConfig
from .errors import InvalidMessageError, TieredMemoryError
from .messages import Message
from .resources import Resources
from .steps import run
from .validation import check_id, prepare_batch
from .writes import append_and_evict

__all__ = [
    "DEFAULT_CHUNK",
    "MAX_REPORTED_ERRORS",
    "MESSAGE_FIELDS",
    "ImportFileError",
    "ImportReport",
    "add_import_command",
    "check_import_file",
    "import_history",
]

#: Messages stored per transaction and indexed per Tier-3 step.
DEFAULT_CHUNK = 1000
MAX_REPORTED_ERRORS = 20
MESSAGE_FIELDS = frozenset(
    {"role", "content", "id", "created_at", "name", "tool_calls", "tool_call_id", "metadata"}
)
_ROUTING_FIELDS = frozenset({"session_id", "user_id"})

#: progress(phase, done, total): phase is "check", "store" or "index".
Progress = Callable[[str, int, int], None]


class ImportFileError(InvalidMessageError):
    """Lines of the import file are invalid; nothing was stored.

    ``errors`` holds ``(line number, reason)`` pairs (the first :data:`MAX_REPORTED_ERRORS`),
    ``bad_lines`` how many lines were bad in all.
    """

    def __init__(self, path: Path, errors: list[tuple[int, str]], bad_lines: int) -> None:
        self.path = path
        self.errors = errors
        self.bad_lines = bad_lines
        listed = "\n".join(f"  {path}:{line}: {reason}" for line, reason in errors)
        more = f"\n  ... and {bad_lines - len(errors)} more" if bad_lines > len(errors) else ""
        super().__init__(
            f"{bad_lines} invalid line(s) in {path}; nothing was imported:\n{listed}{more}"
        )


@dataclass(frozen=True)
class ImportReport:
    """What an import did, and how long each phase took (seconds)."""

    lines: int
    """Messages in the file (blank lines are not counted)."""
    stored: int
    """Messages newly stored (the others were already there: their id was known)."""
    skipped: int
    """Messages whose id the session already held."""
    sessions: int
    indexed: int
    """Messages written to Tier 3 by this import (0 with ``index=False``)."""
    check_seconds: float
    store_seconds: float
    index_seconds: float


@dataclass(frozen=True)
class _Line:
    user_id: str
    session_id: str
    message: Message


def _stable_id(user_id: str, session_id: str, record: Mapping[str, Any], occurrence: int) -> str:
    key = json.dumps(
        [user_id, session_id, record.get("role"), record.get("content"),
         str(record.get("created_at") or ""), occurrence],
        ensure_ascii=False,
    )  # fmt: skip
    return "import-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _read_lines(
    path: Path, user_id: str | None, session_id: str | None
) -> Iterator[tuple[int, _Line | str]]:
    """Each non-blank line as a parsed message, or the reason it is invalid."""
    seen: dict[tuple[str, str], set[str]] = {}
    occurrences: dict[str, int] = {}
    try:
        handle = path.open(encoding="utf-8", newline="\n")
    except OSError as exc:
        raise InvalidMessageError(f"cannot read the import file {path}: {exc}") from exc
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline()
            except UnicodeDecodeError as exc:
                yield number + 1, f"not UTF-8 text ({exc.reason}); the rest of the file is unread"
                return
            if not raw:
                return
            number += 1
            if not raw.strip():
                continue
            yield number, _parse(raw, user_id, session_id, seen, occurrences)


def _parse(
    raw: str,
    user_id: str | None,
    session_id: str | None,
    seen: dict[tuple[str, str], set[str]],
    occurrences: dict[str, int],
) -> _Line | str:
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    unknown = sorted(set(record) - MESSAGE_FIELDS - _ROUTING_FIELDS)
    if unknown:
        allowed = sorted(MESSAGE_FIELDS | _ROUTING_FIELDS)
        return f"unknown field(s) {unknown}; allowed: {allowed} (extras go in 'metadata')"
    try:
        user = check_id(record.get("user_id", user_id), "user_id", InvalidMessageError)
        session = check_id(record.get("session_id", session_id), "session_id", InvalidMessageError)
    except InvalidMessageError as exc:
        return f"{exc} (give it on the line or with --user-id/--session-id)"
    fields = {k: v for k, v in record.items() if k in MESSAGE_FIELDS}
    if fields.get("id") is None:
        digest = _stable_id(user, session, fields, 0)
        occurrence = occurrences.get(digest, 0)
        occurrences[digest] = occurrence + 1
        fields["id"] = _stable_id(user, session, fields, occurrence) if occurrence else digest
    try:
        message = Message.from_dict(fields)
        check_id(message.id, "message id", InvalidMessageError)
        for call in message.tool_calls:
            call.check_arguments()
    except (InvalidMessageError, RecursionError) as exc:
        return str(exc) if isinstance(exc, InvalidMessageError) else "nested too deeply"
    ids = seen.setdefault((user, session), set())
    if message.id in ids:
        return f"message id {message.id!r} appears twice in session {session!r}"
    ids.add(message.id)
    return _Line(user, session, message)


def check_import_file(
    path: str | Path,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    progress: Progress | None = None,
) -> dict[tuple[str, str], int]:
    """Validate every line; returns the message count per ``(user_id, session_id)``.

    Raises:
        ImportFileError: some lines are invalid (each named with its line number).
        InvalidMessageError: the file cannot be read.
    """
    path = Path(path)
    lines = _count_lines(path)
    counts: dict[tuple[str, str], int] = {}
    errors: list[tuple[int, str]] = []
    bad = 0
    for number, parsed in _read_lines(path, user_id, session_id):
        if isinstance(parsed, str):
            bad += 1
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append((number, parsed))
            continue
        key = (parsed.user_id, parsed.session_id)
        counts[key] = counts.get(key, 0) + 1
        if progress is not None and number % 1000 == 0:
            progress("check", min(number, lines), lines)
    if progress is not None:
        progress("check", lines, lines)
    if bad:
        raise ImportFileError(path, errors, bad)
    return counts


def import_history(
    file: str | Path,
    path: str | Path = "./.tiered_memory",
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    config: MemoryConfig | None = None,
    embedder: Any | None = None,
    chunk: int = DEFAULT_CHUNK,
    index: bool = True,
    progress: Progress | None = None,
    resources: Resources | None = None,
) -> ImportReport:
    """Import a JSONL history into the memory stored under ``path`` (see the module doc).

    Args:
        file: the JSONL file.
        path: the memory's directory (as ``TieredMemory(path=...)``).
        user_id / session_id: for lines that do not name theirs.
        config: the memory's configuration (the same as the app's: budgets, secrets, stores).
        embedder: the Tier-3 embedder (None: the bundled MiniLM).
        chunk: messages per store transaction and per Tier-3 step.
        index: write Tier 3 now (else the next write, flush or recall does it).
        progress: called as ``progress(phase, done, total)``.
        resources: stores to use (default: ones opened and closed by this call).

    Raises:
        ImportFileError: invalid lines (nothing stored).
        TieredMemoryError: a store or the embedder failed; what was stored stays stored (run the
            import again: known ids are skipped, unindexed messages are indexed later).
    """
    from .memory import TieredMemory

    if not isinstance(chunk, int) or not 1 <= chunk <= 100_000:
        raise InvalidMessageError(f"chunk must be an int in [1, 100000], got {chunk!r}")
    file = Path(file)
    started = time.perf_counter()
    counts = check_import_file(file, user_id=user_id, session_id=session_id, progress=progress)
    total = sum(counts.values())
    checked = time.perf_counter()
    owned = resources is None
    resources = resources or Resources()
    memories: dict[str, TieredMemory] = {}  # one per user: the session is the write's argument
    stored = done = waiting = 0
    pending: dict[tuple[str, str], list[Message]] = {}

    def store_pending() -> None:
        nonlocal stored, done, waiting
        for (user, session), batch in pending.items():
            memory = memories.get(user)
            if memory is None:
                memory = TieredMemory(
                    session, user, path, config, embedder=embedder, resources=resources
                )
                memories[user] = memory
            stored += _store(memory, session, batch)
            done += len(batch)
        pending.clear()
        waiting = 0
        if progress is not None:
            progress("store", done, total)

    try:
        for _, parsed in _read_lines(file, user_id, session_id):
            if isinstance(parsed, str):  # the file changed since the check
                raise InvalidMessageError(f"{file} changed during the import: {parsed}")
            pending.setdefault((parsed.user_id, parsed.session_id), []).append(parsed.message)
            waiting += 1
            if waiting >= chunk:
                store_pending()
        store_pending()
        store_done = time.perf_counter()
        indexed = _index(list(memories.values()), chunk, progress, stored) if index else 0
    finally:
        if owned:
            resources.close()
    finished = time.perf_counter()
    return ImportReport(
        lines=total, stored=stored, skipped=total - stored, sessions=len(counts),
        indexed=indexed, check_seconds=checked - started, store_seconds=store_done - checked,
        index_seconds=finished - store_done,
    )  # fmt: skip


def _store(memory: Any, session_id: str, batch: list[Message]) -> int:
    """One session's part of a chunk, written as ``TieredMemory.add_messages`` writes it (one
    transaction: validated, secrets sealed, window evicted), without its Tier-2/3 work."""
    items = prepare_batch(batch, memory.config, memory.counter)
    if memory.vault is not None:
        items = run(memory.vault.seal_steps(items, memory.counter.count_message))
    result = append_and_evict(memory.store, memory.user_id, session_id, items, memory.config)
    return len(result.added)


def _index(memories: list[Any], chunk: int, progress: Progress | None, expected: int) -> int:
    """Tier 3 for every user of the import, ``chunk`` messages a step (``expected``: the
    messages this import stored; an earlier backlog of the users is indexed too)."""
    total = expected
    done = 0
    if progress is not None:
        progress("index", 0, total)
    for memory in memories:
        if not memory.config.index_long_term:
            continue
        while True:
            count = run(memory.tier3.index_steps(limit=chunk))
            if count == 0:
                break
            done += count
            total = max(total, done)
            if progress is not None:
                progress("index", done, total)
    return done


def _count_lines(path: Path) -> int:
    """Lines of the file, for the progress bar (0 if it cannot be read: the check says why)."""
    count = 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                count += block.count(b"\n")
    except OSError:
        return 0
    return count


# --- the command line ------------------------------------------------------------------------


def add_import_command(commands: Any) -> None:
    """Register ``tiered-memory import FILE`` on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "import",
        help="bulk-import a JSONL history (one message a line) with a progress bar",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("file", metavar="FILE", help="JSONL: one {role, content, ...} a line")
    parser.add_argument("--path", default="./.tiered_memory", help="the memory's directory")
    parser.add_argument("--user-id", help="user of the lines that name none")
    parser.add_argument("--session-id", help="session of the lines that name none")
    parser.add_argument("--url", help="session store URL (default: SQLite under --path)")
    parser.add_argument(
        "--chunk", type=int, default=DEFAULT_CHUNK, help="messages per transaction / Tier-3 step"
    )
    parser.add_argument(
        "--no-index",
        action="store_true",
        help="store only; Tier 3 is written by the session's next write, flush or recall",
    )
    parser.add_argument("--check", action="store_true", help="validate the file, store nothing")
    parser.set_defaults(run=_run_import)


def _run_import(args: Any) -> int:
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True, highlight=False)
    labels = {"check": "checking", "store": "storing", "index": "indexing (Tier 3)"}
    columns = (
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
    )  # fmt: skip
    try:
        config = MemoryConfig(session_store_url=args.url) if args.url else None
        with Progress(*columns, console=console, transient=False) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(labels[phase], total=total)
                bar.update(tasks[phase], completed=done, total=total)

            if args.check:
                counts = check_import_file(
                    args.file, user_id=args.user_id, session_id=args.session_id, progress=progress
                )
                report = None
            else:
                report = import_history(
                    args.file, args.path, user_id=args.user_id, session_id=args.session_id,
                    config=config, chunk=args.chunk, index=not args.no_index, progress=progress,
                )  # fmt: skip
    except TieredMemoryError as exc:
        print(f"tiered-memory import: {exc}", file=sys.stderr)
        return 1
    if report is None:
        print(f"{sum(counts.values())} valid messages in {len(counts)} session(s); nothing stored")
        return 0
    print(
        f"{report.stored} messages stored, {report.skipped} already there (known ids), "
        f"{report.sessions} session(s), {report.indexed} indexed; "
        f"check {report.check_seconds:.1f}s, store {report.store_seconds:.1f}s, "
        f"index {report.index_seconds:.1f}s"
    )
    return 0
