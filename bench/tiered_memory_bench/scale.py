"""``scale``: one store of many users; a fresh process recalls for each user once; forget across
processes; recall latency at one user's 100k memories. Embedding excluded (HashEmbedder).

The store is built through Tier 3's own write path, not message by message: per user, the
documents' vectors go to Chroma (``ChromaLongTermStore.upsert``) and the documents with their BM25
postings to the session store (``SqlSessionStore.mark_indexed``, one transaction per batch), which
is what indexing does after ``add_messages``, without the session log, the window and compaction
of each message (their cost is the ``overhead`` and ``latency`` commands'). The forget check goes
through the public API end to end (``add_messages``, ``recall``, ``forget``) in two processes.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .common import note, progress
from .metrics import percentile
from .overhead import peak_rss_mb as ru_maxrss_mb

RECALL_K = 10
BATCH = 1_000  # documents per upsert and per store transaction
SECRET = "My spare key hides under the blue flower pot near the garage door."
FORGET_QUERY = "where is the spare key hidden, flower pot"
GOALS = {"peak_rss_mb": 1024.0, "cold_recall_p50_ms": 50.0, "recall_p50_ms_at_100k": 30.0}

_SYLLABLES = [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]


def peak_rss_mb() -> float:
    """Peak RSS of this process image: VmHWM on Linux (``ru_maxrss`` survives ``exec``, so a
    spawned child would report its forking parent's peak), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return ru_maxrss_mb()


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """Pseudo-words (two or three syllables), deterministic."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))))
    return sorted(words)


class Corpus:
    """Synthetic chat turns: Zipf-distributed words, 6-30 per turn, so BM25 sees common and
    rare terms as in real text."""

    def __init__(self, words: int = 20_000, seed: int = 11) -> None:
        import numpy as np

        self.words = vocabulary(words)
        # Zipf without its head: the most frequent words of real text are stopwords, which BM25
        # drops; the first content words are then about 1% of the tokens, not 10%.
        weights = np.array([1.0 / (rank + 100) for rank in range(len(self.words))])
        self._cdf = np.cumsum(weights / weights.sum())
        self._np = np.random.default_rng(seed)
        self.rng = random.Random(seed)

    def turns(self, count: int) -> list[str]:
        """``count`` turns at once (numpy: a million take seconds, not minutes)."""
        import numpy as np

        lengths = self._np.integers(6, 31, size=count)
        picks = np.searchsorted(self._cdf, self._np.random(int(lengths.sum())), side="right")
        picks = np.minimum(picks, len(self.words) - 1)
        out, at = [], 0
        for n in lengths.tolist():
            out.append(" ".join(self.words[i] for i in picks[at : at + n].tolist()))
            at += n
        return out

    def turn(self) -> str:
        return self.turns(1)[0]

    def query_from(self, text: str) -> str:
        words = text.split()
        return " ".join(self.rng.sample(words, min(4, len(words))))


def _documents(user: int, count: int, corpus: Corpus, start: datetime) -> list[Any]:
    from tiered_memory.state import StoredDocument

    return [
        StoredDocument(
            session_id=f"s{n // 100}",  # 100 turns a session
            message_id=f"u{user}-m{n}",
            seq=n % 100,
            role="user" if n % 2 == 0 else "assistant",
            created_at=(start + timedelta(minutes=n)).isoformat(),
            text=text,
        )
        for n, text in enumerate(corpus.turns(count))
    ]


def _write_user(store: Any, vectors: Any, embedder: Any, user_id: str, docs: Sequence[Any]) -> None:
    from tiered_memory.recall.vectors import long_term_records

    for begin in range(0, len(docs), BATCH):
        batch = docs[begin : begin + BATCH]
        embeddings = embedder.embed_documents([d.text for d in batch])
        vectors.upsert(user_id, long_term_records(user_id, batch, embeddings))
        store.mark_indexed(user_id, [(d.session_id, d.message_id) for d in batch], batch)


def _open(path: Path) -> tuple[Any, Any, Any]:
    from tiered_memory import MemoryConfig
    from tiered_memory.resources import Resources

    resources = Resources()
    config = MemoryConfig()
    return resources, resources.session_store(path, config), resources.long_term_store(path, config)


def build_store(path: Path, users: int, messages: int, big_user: int) -> dict[str, Any]:
    """Write ``users`` x ``messages`` documents (and one user of ``big_user``); returns timings
    and one query per user (words of one of its turns)."""
    from tiered_memory import HashEmbedder

    corpus = Corpus()
    embedder = HashEmbedder()
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    resources, store, vectors = _open(path)
    queries: dict[str, str] = {}
    began = time.perf_counter()
    try:
        for user in progress(range(users), "scale: build users", total=users):
            docs = _documents(user, messages, corpus, start)
            _write_user(store, vectors, embedder, f"user{user}", docs)
            queries[f"user{user}"] = corpus.query_from(corpus.rng.choice(docs).text)
        users_s = time.perf_counter() - began
        big_queries: list[str] = []
        big_s = 0.0
        if big_user:
            began = time.perf_counter()
            docs = _documents(-1, big_user, corpus, start)
            for begin in progress(
                range(0, len(docs), 10_000), "scale: build the 100k user", total=len(docs) // 10_000
            ):
                _write_user(store, vectors, embedder, "big", docs[begin : begin + 10_000])
            big_queries = [corpus.query_from(corpus.rng.choice(docs).text) for _ in range(100)]
            big_s = time.perf_counter() - began
    finally:
        resources.close()
    return {
        "build_users_s": round(users_s, 1),
        "build_big_user_s": round(big_s, 1),
        "queries": queries,
        "big_queries": big_queries,
    }


# --- measured in fresh processes ---------------------------------------------------------------


def _memory(path: Path, user_id: str, resources: Any, session: str = "probe") -> Any:
    from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory

    return TieredMemory(
        session, user_id, path, MemoryConfig(), embedder=HashEmbedder(), resources=resources
    )


def cold_recalls(path: Path, queries: dict[str, str]) -> dict[str, Any]:
    """One recall per user, each user's first in this process; peak RSS of the process."""
    from tiered_memory.resources import Resources

    samples: list[float] = []
    hits = 0
    with Resources() as resources:
        for user_id, query in progress(queries.items(), "scale: cold recalls", total=len(queries)):
            memory = _memory(path, user_id, resources)
            began = time.perf_counter()
            found = memory.recall(query, k=RECALL_K)
            samples.append((time.perf_counter() - began) * 1000)
            hits += bool(found)
        rss = peak_rss_mb()
    return {
        "ru_maxrss_mb": ru_maxrss_mb(),
        "users": len(samples),
        "p50_ms": round(percentile(samples, 50), 2),
        "p95_ms": round(percentile(samples, 95), 2),
        "max_ms": round(max(samples), 2),
        "users_with_hits": hits,
        "peak_rss_mb": rss,
    }


def big_user_recalls(path: Path, queries: Sequence[str]) -> dict[str, Any]:
    """Recall latency over one user's 100k memories: the first (cold) apart, then the rest."""
    from tiered_memory.resources import Resources

    with Resources() as resources:
        memory = _memory(path, "big", resources)
        samples = []
        for query in queries:
            began = time.perf_counter()
            memory.recall(query, k=RECALL_K)
            samples.append((time.perf_counter() - began) * 1000)
        rss = peak_rss_mb()
        writes = _chat_sized_writes(resources, path)
    warm = samples[1:]
    return {
        "queries": len(samples),
        "first_ms": round(samples[0], 2),
        "p50_ms": round(percentile(warm, 50), 2),
        "p95_ms": round(percentile(warm, 95), 2),
        "peak_rss_mb": rss,
        "chroma_write_of_5_p50_ms": round(percentile(writes, 50), 2),
        "chroma_write_of_5_p95_ms": round(percentile(writes, 95), 2),
    }


def _chat_sized_writes(resources: Any, path: Path, count: int = 40) -> list[float]:
    """Milliseconds of Chroma upserts of 5 records into the big user's collection (which writes
    its index to disk on every write), the records deleted afterwards (the store is reused)."""
    from tiered_memory import HashEmbedder, MemoryConfig
    from tiered_memory.recall.vectors import long_term_records

    vectors = resources.long_term_store(path, MemoryConfig())
    embedder = HashEmbedder()
    # user -2: message ids no user of the store has
    docs = _documents(-2, count * 5, Corpus(seed=5), datetime.now(timezone.utc))
    samples: list[float] = []
    keys: list[str] = []
    for begin in range(0, len(docs), 5):
        batch = docs[begin : begin + 5]
        records = long_term_records("big", batch, embedder.embed_documents([d.text for d in batch]))
        began = time.perf_counter()
        vectors.upsert("big", records)
        samples.append((time.perf_counter() - began) * 1000)
        keys += [r.key for r in records]
    vectors.delete("big", keys)
    return samples


def _reader(path: Path, connection: Any, user_id: str) -> None:
    """Process B: recall before and after process A's forget, on the same open memory."""
    import numpy as np

    from tiered_memory.recall.lexical import terms
    from tiered_memory.resources import Resources

    with Resources() as resources:
        memory = _memory(path, user_id, resources, session="reader")
        before = [h.text for h in memory.recall(FORGET_QUERY, k=RECALL_K)]
        connection.send(before)
        connection.recv()  # A has forgotten
        after = [h.text for h in memory.recall(FORGET_QUERY, k=50)]
        words = terms(FORGET_QUERY)
        lexicon = memory.store.lexicon(user_id, words)  # every document BM25 still matches
        matching = np.flatnonzero(lexicon.scores(words))
        keys = [(lexicon.session(int(s)), lexicon.message_ids[int(s)]) for s in matching]
        lexical = [d.text for d in memory.store.documents(user_id, keys)]
        connection.send((after, lexical))


def forget_across_processes(path: Path) -> dict[str, Any]:
    """A (this process) writes and forgets; B (a spawned process) recalls before and after."""
    from tiered_memory.resources import Resources

    context = multiprocessing.get_context("spawn")
    corpus = Corpus(seed=3)
    with Resources() as resources:
        user_id = f"forget-check-{uuid.uuid4().hex[:8]}"  # a reused store: a new user each run
        writer = _memory(path, user_id, resources, session="writer")
        turns = [{"role": "user", "content": SECRET}]
        turns += [{"role": "assistant", "content": corpus.turn()} for _ in range(200)]
        secret = writer.add_messages(turns)[0].id
        writer.flush()
        ours, theirs = context.Pipe()
        reader = context.Process(target=_reader, args=(path, theirs, user_id))
        reader.start()
        try:
            before = ours.recv()
            writer.forget(message_id=secret)
            ours.send("forgotten")
            after, lexical = ours.recv()
        finally:
            reader.join(60)
    seen = any("flower pot" in text for text in before)
    gone = not any("flower pot" in text for text in after + lexical)
    return {
        "b_saw_it_before": seen,
        "b_sees_no_trace_after": gone,
        "passed": seen and gone,
    }


def _manifest(path: Path) -> Path:
    return path / "scale-manifest.json"


def _reuse(path: Path, users: int, messages: int, big_user: int) -> dict[str, Any] | None:
    """What an earlier run built in ``path`` with the same sizes, or None (then built there)."""
    manifest = _manifest(path)
    if manifest.exists():
        built: dict[str, Any] = json.loads(manifest.read_text())
        if (built["users"], built["messages"], built["big_user"]) == (users, messages, big_user):
            return built
        raise SystemExit(f"{path} holds a store of other sizes ({manifest}); use another --store")
    if path.exists() and any(path.iterdir()):
        raise SystemExit(f"{path} is not empty and holds no scale store; use another --store")
    path.mkdir(parents=True, exist_ok=True)
    return None


def _in_child(function: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def run_scale(
    users: int,
    messages: int,
    recall_users: int | None,
    big_user: int,
    workdir: Path | None,
    store: Path | None = None,
) -> dict[str, Any]:
    """Build the store (in a temp directory, or once in ``store`` and reused on later runs
    with the same sizes: a 1,000 x 1,000 store takes most of an hour to build) and measure."""
    with tempfile.TemporaryDirectory(prefix="tm-scale-", dir=workdir) as tmp:
        path = Path(tmp) if store is None else store
        built = _reuse(path, users, messages, big_user) if store is not None else None
        if built is None:
            note(f"scale: building {users:,} users x {messages:,} messages under {path}")
            built = _in_child(build_store, path, users, messages, big_user)  # stays small here
            if store is not None:
                _manifest(path).write_text(
                    json.dumps(
                        {"users": users, "messages": messages, "big_user": big_user, **built}
                    )
                )
        else:
            note(f"scale: reusing the store of {users:,} x {messages:,} under {path}")
        note(f"  built in {built['build_users_s']} s (+{built['build_big_user_s']} s big user)")
        queries = dict(list(built["queries"].items())[: recall_users or users])
        cold = _in_child(cold_recalls, path, queries)
        note(
            f"  cold recall over {cold['users']:,} users: p50 {cold['p50_ms']} ms, "
            f"p95 {cold['p95_ms']} ms, peak RSS {cold['peak_rss_mb']} MB"
        )
        big = _in_child(big_user_recalls, path, built["big_queries"]) if big_user else None
        if big:
            note(
                f"  recall at {big_user:,} memories: p50 {big['p50_ms']} ms, p95 {big['p95_ms']} ms;"
                f" a 5-record Chroma write there p50 {big['chroma_write_of_5_p50_ms']} ms"
            )
        forget = forget_across_processes(path)
        note(
            f"  forget in process A, recall in process B: {'PASS' if forget['passed'] else 'FAIL'}"
        )
        size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    out: dict[str, Any] = {
        "embedder": "HashEmbedder(256) (embedding cost excluded)",
        "users": users,
        "messages_per_user": messages,
        "recall_k": RECALL_K,
        "build": {k: v for k, v in built.items() if "queries" not in k},
        "store_size_mb": round(size_mb, 1),
        "cold_recall": cold,
        "big_user": None if big is None else {"memories": big_user, **big},
        "forget_across_processes": forget,
        "goals": GOALS,
    }
    return out
