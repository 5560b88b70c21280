"""An on-disk cache of document embeddings, keyed by model name and text hash (SQLite).

Wrapped around any embedder, it makes a second benchmark run (and every system after the first
in one run) read vectors instead of computing them: embedding a LongMemEval haystack with the
bundled MiniLM takes minutes on a small machine. Queries are not cached, so the latencies the
benchmarks report still include embedding the query.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from array import array
from collections.abc import Sequence
from pathlib import Path

from tiered_memory.embeddings import Embedder

DEFAULT_CACHE_DIR = Path("~/.cache/tiered-memory-bench")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_sha256)
)
"""


def cache_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """``given``, else ``$TIERED_MEMORY_BENCH_CACHE``, else ``~/.cache/tiered-memory-bench``."""
    raw = given or os.environ.get("TIERED_MEMORY_BENCH_CACHE") or DEFAULT_CACHE_DIR
    return Path(raw).expanduser()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_key(embedder: object) -> str:
    """What identifies the vectors an embedder computes: class, model name, sequence length."""
    parts = [type(embedder).__module__ + "." + type(embedder).__qualname__]
    for attribute in ("name", "model_name", "max_length", "dimensions"):
        value = getattr(embedder, attribute, None)
        if isinstance(value, (str, int)):
            parts.append(f"{attribute}={value}")
    return ";".join(parts)


class DiskCachedEmbedder:
    """The :class:`~tiered_memory.Embedder` protocol over ``inner``, document vectors on disk.

    Args:
        inner: the embedder that computes missing vectors.
        path: the SQLite file (created with its folder).
        model: the cache key of ``inner``'s vectors (default :func:`model_key`).
    """

    def __init__(self, inner: Embedder, path: str | os.PathLike[str], model: str = "") -> None:
        self.inner = inner
        self.model = model or model_key(inner)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute(_SCHEMA)
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def _read(self, keys: Sequence[str]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT text_sha256, vector FROM embeddings WHERE model = ? "
                f"AND text_sha256 IN ({marks})",
                [self.model, *chunk],
            ).fetchall()
            for key, blob in rows:
                found[key] = array("d", blob).tolist()
        return found

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        keys = [text_key(t) for t in texts]
        with self._lock:
            found = self._read(list(dict.fromkeys(keys)))
        todo = [(k, t) for k, t in dict.fromkeys(zip(keys, texts, strict=True)) if k not in found]
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            vectors = self.inner.embed_documents([t for _, t in todo])
            rows = []
            for (key, _), vector in zip(todo, vectors, strict=True):
                found[key] = [float(x) for x in vector]
                rows.append((self.model, key, array("d", found[key]).tobytes()))
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
                self._db.commit()
        return [list(found[k]) for k in keys]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.inner.embed_query(text)]

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model = ?", [self.model]
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
