"""``overhead``: the memory's own cost, embedding excluded (HashEmbedder).

Two measurements per system, each in a fresh process (so peak RSS is that measurement's):
- add+context: per LoCoMo turn, store the message and build the prompt
  (tiered-memory: add + context; LlamaIndex Memory: put + get; Mem0: add(infer=False) + search
  top 5 for the message, Mem0 having no context of its own);
- recall at N stored memories: latency of one search, k=10, over LoCoMo questions.
"""

from __future__ import annotations

import itertools
import multiprocessing
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import CachingEmbedder, note, progress
from .locomo import Conversation, Turn
from .metrics import mean, percentile

RECALL_K = 10
ADD_CONTEXT_SYSTEMS = ("tiered-memory", "llamaindex-memory", "mem0")
RECALL_SYSTEMS = ("tiered-memory", "llamaindex-vector-block", "mem0")
SYSTEM_PACKAGES = {
    "tiered-memory": "tiered_memory",
    "llamaindex-memory": "llama_index.core",
    "llamaindex-vector-block": "llama_index.core",
    "mem0": "mem0",
}


def fast_embedder() -> CachingEmbedder:
    """HashEmbedder, uncached: microseconds a text, so the memory's own cost dominates."""
    from tiered_memory import HashEmbedder

    return CachingEmbedder(HashEmbedder(), "HashEmbedder(256)", cache=False)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def latency_row(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples_ms, 50), 3),
        "p99_ms": round(percentile(samples_ms, 99), 3),
        "mean_ms": round(mean(samples_ms), 3),
        "samples": len(samples_ms),
    }


# --- add + context ---------------------------------------------------------------------------


class _Mem0Chat:
    """Mem0 per turn: add the message raw, then search memories for it (its prompt context)."""

    def __init__(self, workdir: Path, user_id: str) -> None:
        from .retrievers import mem0_memory

        self.memory = mem0_memory(workdir, fast_embedder(), f"mem0-overhead-{user_id}")
        self.user_id = user_id

    def add(self, role: str, content: str, created_at: Any = None) -> None:
        self.memory.add([{"role": role, "content": content}], user_id=self.user_id, infer=False)

    def prompt(self) -> Any:
        return None  # the search below is Mem0's context step

    def search(self, content: str) -> Any:
        return self.memory.search(
            content, top_k=5, filters={"user_id": self.user_id}, threshold=0.0
        )

    def close(self) -> None:
        self.memory = None


def _add_context_memory(system: str, workdir: Path, conversation_id: str) -> Any:
    from .chat_memories import Budgets, LlamaIndexMemory, TieredChat

    if system == "tiered-memory":
        return TieredChat(Budgets(), workdir, conversation_id, embedder=fast_embedder())
    if system == "llamaindex-memory":
        return LlamaIndexMemory(Budgets(), workdir, conversation_id)
    if system == "mem0":
        return _Mem0Chat(workdir, conversation_id)
    raise ValueError(f"no add+context measurement for {system!r}")


def measure_add_context(system: str, conversations: Sequence[Conversation]) -> dict[str, Any]:
    """Per-turn milliseconds of storing a message and building the next prompt."""
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-overhead-{system}-") as tmp:
        for conversation in conversations:
            memory = _add_context_memory(system, Path(tmp), conversation.sample_id)
            try:
                for turn in progress(conversation.turns, f"{system} {conversation.sample_id}"):
                    start = time.perf_counter()
                    memory.add(turn.chat_role, turn.text, turn.created_at)
                    if isinstance(memory, _Mem0Chat):
                        memory.search(turn.text)
                    else:
                        memory.prompt()
                    samples.append((time.perf_counter() - start) * 1000.0)
            finally:
                memory.close()
    return {**latency_row(samples), "peak_rss_mb": peak_rss_mb()}


# --- recall at N stored memories ---------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticMemory:
    text: str
    role: str
    created_at: Any
    number: int


def synthetic_memories(turns: Sequence[Turn], n: int) -> list[SyntheticMemory]:
    """``n`` stored messages: the LoCoMo turns cycled, each copy tagged to stay distinct."""
    out = []
    for number, turn in zip(range(n), itertools.cycle(turns), strict=False):
        copy = number // len(turns)
        text = turn.document if copy == 0 else f"{turn.document} (retelling {copy})"
        out.append(SyntheticMemory(text, turn.chat_role, turn.created_at, number))
    return out


def _build_tiered(workdir: Path, memories: Sequence[SyntheticMemory]) -> Callable[[str], Any]:
    from tiered_memory import Message, TieredMemory

    from .fakes import FixedSummarizer

    memory = None
    batch_size = 500
    for start in progress(
        range(0, len(memories), batch_size),
        "tiered-memory build",
        total=(len(memories) + batch_size - 1) // batch_size,
    ):
        if memory is not None:
            memory.close()
        memory = TieredMemory(
            session_id=f"s{start // batch_size}",
            user_id="overhead",
            path=str(workdir),
            summarizer=FixedSummarizer(250),
            embedder=fast_embedder(),
        )
        memory.add_messages(
            [
                Message(role=m.role, content=m.text, created_at=m.created_at)  # type: ignore[arg-type]
                for m in memories[start : start + batch_size]
            ]
        )
    assert memory is not None
    final = memory
    return lambda query: final.recall(query, k=RECALL_K)


def _build_llamaindex(workdir: Path, memories: Sequence[SyntheticMemory]) -> Callable[[str], Any]:
    from llama_index.core.async_utils import asyncio_run
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import VectorMemoryBlock
    from llama_index.core.schema import TextNode

    from .retrievers import llamaindex_embedding, text_simple_vector_store

    embedder = fast_embedder()
    store = text_simple_vector_store()
    block = VectorMemoryBlock(
        vector_store=store, embed_model=llamaindex_embedding(embedder), similarity_top_k=RECALL_K
    )
    # One node per message, as the block writes them (role-tagged text), vectors precomputed.
    for start in progress(
        range(0, len(memories), 1000), "llamaindex build", total=(len(memories) + 999) // 1000
    ):
        chunk = memories[start : start + 1000]
        texts = [f"<message role='{m.role}'>{m.text}</message>" for m in chunk]
        vectors = embedder.embed_documents(texts)
        store.add([TextNode(text=t, embedding=v) for t, v in zip(texts, vectors, strict=True)])
    return lambda query: asyncio_run(block.aget(messages=[ChatMessage(role="user", content=query)]))


def _build_mem0(workdir: Path, memories: Sequence[SyntheticMemory]) -> Callable[[str], Any]:
    """Mem0's store filled in bulk with the exact payload ``add(infer=False)`` writes.

    One ``add`` costs tens of milliseconds (measured by add+context), so 100k of them would
    take hours; the search measured here is Mem0's own ``Memory.search``.
    """
    import hashlib
    import uuid
    from datetime import datetime, timezone

    from mem0.utils.lemmatization import lemmatize_for_bm25

    from .retrievers import mem0_memory

    embedder = fast_embedder()
    memory = mem0_memory(workdir, embedder, "mem0-overhead-recall")
    now = datetime.now(timezone.utc).isoformat()
    for start in progress(
        range(0, len(memories), 1000), "mem0 build", total=(len(memories) + 999) // 1000
    ):
        chunk = memories[start : start + 1000]
        payloads = [
            {
                "user_id": "overhead",
                "role": m.role,
                "data": m.text,
                "hash": hashlib.md5(m.text.encode()).hexdigest(),
                "created_at": now,
                "updated_at": now,
                "text_lemmatized": lemmatize_for_bm25(m.text),
            }
            for m in chunk
        ]
        memory.vector_store.insert(
            vectors=embedder.embed_documents([m.text for m in chunk]),
            payloads=payloads,
            ids=[str(uuid.uuid4()) for _ in chunk],
        )
    return lambda query: memory.search(
        query, top_k=RECALL_K, filters={"user_id": "overhead"}, threshold=0.0
    )


RECALL_BUILDERS: dict[str, Callable[[Path, Sequence[SyntheticMemory]], Callable[[str], Any]]] = {
    "tiered-memory": _build_tiered,
    "llamaindex-vector-block": _build_llamaindex,
    "mem0": _build_mem0,
}


def measure_recall(
    system: str, conversations: Sequence[Conversation], size: int, queries: int
) -> dict[str, Any]:
    turns = [t for c in conversations for t in c.turns]
    questions = [q.question for c in conversations for q in c.questions] or [t.text for t in turns]
    asked = list(itertools.islice(itertools.cycle(questions), queries))
    with tempfile.TemporaryDirectory(prefix=f"bench-recall-{system}-") as tmp:
        started = time.perf_counter()
        search = RECALL_BUILDERS[system](Path(tmp), synthetic_memories(turns, size))
        build_s = time.perf_counter() - started
        search(asked[0])  # warm-up (lazy loads), not timed
        samples = []
        for query in progress(asked, f"{system} recall@{size}"):
            start = time.perf_counter()
            search(query)
            samples.append((time.perf_counter() - start) * 1000.0)
    return {**latency_row(samples), "build_s": round(build_s, 1), "peak_rss_mb": peak_rss_mb()}


# --- driver ------------------------------------------------------------------------------------


def _in_child(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one measurement in a fresh spawned process (its own peak RSS)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def _available(system: str) -> str | None:
    import importlib

    try:
        importlib.import_module(SYSTEM_PACKAGES[system])
    except ImportError as exc:
        return f"package {SYSTEM_PACKAGES[system]!r} not importable: {exc}"
    return None


def run_overhead(
    conversations: Sequence[Conversation],
    sizes: Sequence[int],
    systems: Sequence[str],
    queries: int = 200,
    isolate: bool = True,
    dataset: str = "",
) -> dict[str, Any]:
    def call(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        return _in_child(function, *args) if isolate else function(*args)

    out: dict[str, Any] = {
        "dataset": dataset,
        "embedder": "HashEmbedder(256) (embedding cost excluded)",
        "turns": sum(len(c.turns) for c in conversations),
        "recall_k": RECALL_K,
        "sizes": list(sizes),
        "systems": {},
        "skipped": {},
    }
    for system in systems:
        reason = _available(system) if system in SYSTEM_PACKAGES else "unknown system"
        if reason:
            out["skipped"][system] = reason
            note(f"SKIPPED {system}: {reason}")
            continue
        row: dict[str, Any] = {}
        try:
            if system in ADD_CONTEXT_SYSTEMS:
                row["add_context"] = call(measure_add_context, system, conversations)
                a = row["add_context"]
                note(
                    f"  {system} add+context: p50 {a['p50_ms']:.2f} ms  p99 {a['p99_ms']:.2f} ms"
                    f"  peak RSS {a['peak_rss_mb']} MB"
                )
            if system in RECALL_SYSTEMS:
                row["recall"] = {}
                for size in sizes:
                    r = call(measure_recall, system, conversations, size, queries)
                    row["recall"][str(size)] = r
                    note(
                        f"  {system} recall @{size:,}: p50 {r['p50_ms']:.2f} ms  "
                        f"p99 {r['p99_ms']:.2f} ms  build {r['build_s']} s  "
                        f"peak RSS {r['peak_rss_mb']} MB"
                    )
        except Exception as exc:  # recorded, never dropped silently
            traceback.print_exc()
            out["skipped"][system] = f"failed: {type(exc).__name__}: {exc}"
            note(f"SKIPPED {system}: {out['skipped'][system]}")
            if row:
                out["systems"][system] = row
            continue
        out["systems"][system] = row
    add_goals(out)
    return out


def add_goals(out: dict[str, Any]) -> None:
    tiered = out["systems"].get("tiered-memory")
    if not tiered:
        return
    goals: dict[str, Any] = {}
    if "add_context" in tiered:
        goals["add_context_p50_at_most_5ms"] = tiered["add_context"]["p50_ms"] <= 5.0
    at_100k = tiered.get("recall", {}).get("100000")
    goals["recall_p50_at_most_30ms_at_100k"] = (
        at_100k["p50_ms"] <= 30.0 if at_100k else "not measured (add 100000 to --sizes)"
    )
    out["goals"] = {"tiered-memory": goals}
    for goal, ok in goals.items():
        verdict = ok if isinstance(ok, str) else ("PASS" if ok else "FAIL")
        note(f"  goal {goal}: {verdict}")


def plot_overhead(result: dict[str, Any], path: Path) -> None:
    """Recall p50/p99 against stored memories, per system (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in result["systems"].items():
        recall = row.get("recall") or {}
        if not recall:
            continue
        sizes = sorted(int(s) for s in recall)
        line = ax.plot(
            sizes, [recall[str(s)]["p50_ms"] for s in sizes], marker="o", label=f"{name} p50"
        )
        ax.plot(
            sizes,
            [recall[str(s)]["p99_ms"] for s in sizes],
            marker="x",
            linestyle="--",
            color=line[0].get_color(),
            label=f"{name} p99",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stored memories")
    ax.set_ylabel(f"recall latency, k={result['recall_k']} (ms)")
    ax.set_title("Recall latency (HashEmbedder: embedding excluded)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    note(f"wrote {path}")
