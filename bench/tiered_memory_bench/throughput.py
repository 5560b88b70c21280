"""Write-path throughput: ``bench embedding`` (the default embedder on dataset turns) and
``bench import`` (``tiered_memory.importer`` on a history built from a dataset).

``embedding``: turns/s of the bundled MiniLM on LongMemEval and LoCoMo turn texts (wall clock
and per CPU-second of this process, which stays meaningful on a busy machine), the token-length
profile of the turns, and how long a huge text takes and how much memory it adds.

``import``: a JSONL history of ``--messages`` turns of the dataset's conversations (one user,
one session per dataset session, cycled when the dataset has fewer turns) is written to a temp
dir (never into the repository) and imported; the result holds each phase's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .common import note
from .datasets import load_conversations
from .locomo import Conversation

LONGMEMEVAL = Path("../shared/data/longmemeval/longmemeval-s-dev.json")
LOCOMO = Path("../shared/data/locomo/locomo-dev.json")


def add_throughput_parsers(commands: Any) -> None:
    """``embedding`` and ``import`` on the bench's sub-command parsers."""
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", dest="json_out", metavar="OUT", help="result file (- = stdout)")
    out.add_argument("--no-plot", action="store_true", help=argparse.SUPPRESS)
    embedding = commands.add_parser(
        "embedding", parents=[out], help="default embedder turns/s on LongMemEval and LoCoMo"
    )
    embedding.add_argument("--longmemeval", default=str(LONGMEMEVAL), help="LongMemEval JSON")
    embedding.add_argument("--locomo", default=str(LOCOMO), help="LoCoMo JSON")
    embedding.add_argument("--limit", type=int, default=500, help="turns per dataset")
    embedding.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    embedding.add_argument("--batch-size", type=int, default=None)
    embedding.add_argument(
        "--model-path", default=None, help="another ONNX export with MiniLM's tokenizer"
    )
    embedding.add_argument(
        "--huge-mb", type=float, default=50.0, help="size of the one huge text (0: skip)"
    )
    bulk = commands.add_parser(
        "import", parents=[out], help="bulk import of a history built from a dataset"
    )
    bulk.add_argument("--data", default=str(LONGMEMEVAL), help="LongMemEval or LoCoMo JSON")
    bulk.add_argument("--messages", type=int, default=10_000)
    bulk.add_argument("--embedder", choices=("hash", "default"), default="hash")
    bulk.add_argument("--chunk", type=int, default=1000)
    bulk.add_argument("--no-index", action="store_true", help="store only (Tier 3 later)")
    bulk.add_argument("--workdir", type=Path, default=None, help="where the temp store goes")


# --- embedding -------------------------------------------------------------------------------


def dataset_turns(path: str | Path, limit: int) -> list[str]:
    """The first ``limit`` distinct turn texts of a dataset, conversations in order."""
    seen: set[str] = set()
    texts: list[str] = []
    for conversation in load_conversations(path):
        for turn in _turns(conversation):
            if turn not in seen:
                seen.add(turn)
                texts.append(turn)
                if len(texts) >= limit:
                    return texts
    return texts


def _turns(conversation: Conversation) -> Iterator[str]:
    for turn in conversation.turns:  # as Tier 3 stores them: LoCoMo's with the speaker's name
        yield f"{turn.speaker}: {turn.text}" if turn.named else turn.text


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_embedding(embedder: Any, texts: Sequence[str]) -> dict[str, Any]:
    """Turns/s (wall and per CPU-second) and the token profile of ``texts``."""
    loaded = embedder._load()
    lengths = np.array([len(loaded.tokenizer.encode(t[:25_600]).ids) for t in texts])
    embedder.encode(list(texts[:16]))  # warm-up: kernels, arena
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.encode(list(texts))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "turns": len(texts),
        "seconds": round(wall, 2),
        "turns_per_second": round(len(texts) / wall, 2),
        "turns_per_cpu_second": round(len(texts) / cpu, 2),
        "tokens_mean": round(float(lengths.mean()), 1),
        "tokens_median": float(np.median(lengths)),
        "share_at_max_length": round(float((lengths >= embedder.max_length).mean()), 3),
        "chars_mean": round(float(np.mean([len(t) for t in texts])), 1),
    }


def run_embedding(args: argparse.Namespace, finish: Callable[..., int]) -> int:
    from tiered_memory.embeddings.minilm import MiniLMEmbedder

    kwargs: dict[str, Any] = {}
    if args.threads is not None:
        kwargs["threads"] = args.threads
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.model_path is not None:
        kwargs["model_path"] = args.model_path
    embedder = MiniLMEmbedder(**kwargs).load()
    result: dict[str, Any] = {
        "embedder": repr(embedder),
        "model": embedder.name,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "datasets": {},
    }
    for name, path in (("longmemeval", args.longmemeval), ("locomo", args.locomo)):
        texts = dataset_turns(path, args.limit)
        row = measure_embedding(embedder, texts)
        result["datasets"][name] = row
        note(
            f"{name}: {row['turns']} turns, {row['turns_per_second']} turns/s "
            f"({row['turns_per_cpu_second']} per CPU-second), {row['tokens_mean']} tokens/turn"
        )
    if args.huge_mb > 0:
        huge = ("lorem ipsum dolor sit amet " * int(args.huge_mb * 1e6 / 27 + 1))[
            : int(args.huge_mb * 1e6)
        ]
        before = _rss_mb()
        wall = time.perf_counter()
        embedder.encode([huge])
        result["huge_text"] = {
            "megabytes": args.huge_mb,
            "seconds": round(time.perf_counter() - wall, 3),
            "peak_rss_growth_mb": round(_rss_mb() - before, 1),
        }
        note(f"huge text: {result['huge_text']}")
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.command = "embedding"
    return finish(args, result, None)


# --- import ----------------------------------------------------------------------------------


def write_history(path: Path, data: str | Path, messages: int) -> int:
    """A JSONL history of ``messages`` dataset turns (one user); returns the line count."""
    conversations = load_conversations(data)
    written = cycle = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < messages:
            for conversation in conversations:
                for number in sorted(conversation.sessions):
                    session = f"{conversation.sample_id}-{number}-{cycle}"
                    for turn in conversation.sessions[number]:
                        line = {
                            "role": "user" if turn.is_speaker_a else "assistant",
                            "content": turn.text,
                            "session_id": session,
                            "created_at": turn.created_at.isoformat(),
                        }
                        if turn.named:
                            line["name"] = turn.speaker
                        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                        written += 1
                        if written >= messages:
                            return written
            cycle += 1
    return written


def run_import(args: argparse.Namespace, finish: Callable[..., int]) -> int:
    from tiered_memory import HashEmbedder
    from tiered_memory.importer import import_history

    with tempfile.TemporaryDirectory(prefix="tm-import-", dir=args.workdir) as scratch:
        file = Path(scratch) / "history.jsonl"
        lines = write_history(file, args.data, args.messages)
        embedder = HashEmbedder() if args.embedder == "hash" else None
        wall, cpu = time.perf_counter(), time.process_time()
        report = import_history(
            file, Path(scratch) / "memory", user_id="migrant", embedder=embedder,
            chunk=args.chunk, index=not args.no_index,
            progress=_printer(),
        )  # fmt: skip
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "data": str(args.data),
        "messages": lines,
        "embedder": args.embedder,
        "chunk": args.chunk,
        "index": not args.no_index,
        "sessions": report.sessions,
        "stored": report.stored,
        "indexed": report.indexed,
        "seconds": {
            "check": round(report.check_seconds, 2),
            "store": round(report.store_seconds, 2),
            "index": round(report.index_seconds, 2),
            "total": round(wall, 2),
            "cpu": round(cpu, 2),
        },
        "messages_per_second": round(lines / wall, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    note(json.dumps(result["seconds"]))
    args.command = f"import-{args.embedder}-{lines}"
    return finish(args, result, None)


def _printer() -> Callable[[str, int, int], None]:
    last: dict[str, float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done >= total or now - last.get(phase, 0.0) > 30:
            last[phase] = now
            note(f"{phase}: {done}/{total}")

    return progress
