"""Process-wide sharing of stores (one engine / client per location) and summarizer plugins."""

from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .config import MemoryConfig
from .recall.chroma import ChromaLongTermStore
from .store import SqlSessionStore

logger = logging.getLogger("tiered_memory")

_lock = threading.Lock()
_session_stores: dict[str, SqlSessionStore] = {}
_long_term_stores: dict[tuple[Any, ...], ChromaLongTermStore] = {}

SUMMARIZER_ENTRY_POINTS = "tiered_memory.summarizers"


def session_store(path: Path, config: MemoryConfig) -> SqlSessionStore:
    """The session store for ``config.session_store_url`` or SQLite under ``path``, shared."""
    url = config.session_store_url or f"sqlite:///{path.resolve() / 'sessions.sqlite3'}"
    with _lock:
        store = _session_stores.get(url)
        if store is None:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            store = SqlSessionStore(url)
            _session_stores[url] = store
        return store


def long_term_store(path: Path, config: MemoryConfig) -> ChromaLongTermStore:
    """The Chroma store: a server if ``config.chroma_host``, else embedded under ``path``."""
    if config.chroma_host:
        key: tuple[Any, ...] = (
            "http", config.chroma_host, config.chroma_port, config.chroma_ssl,
            tuple(sorted((config.chroma_headers or {}).items())), config.collection_prefix,
        )  # fmt: skip
    else:
        key = ("path", str(path.resolve()), config.collection_prefix)
    with _lock:
        store = _long_term_stores.get(key)
        if store is None:
            if config.chroma_host:
                store = ChromaLongTermStore(
                    host=config.chroma_host,
                    port=config.chroma_port,
                    ssl=config.chroma_ssl,
                    headers=config.chroma_headers,
                    collection_prefix=config.collection_prefix,
                )
            else:
                store = ChromaLongTermStore(path=path, collection_prefix=config.collection_prefix)
            _long_term_stores[key] = store
        return store


def reset() -> None:
    """Close and forget every shared store (tests; a worker process after a fork)."""
    with _lock:
        stores = list(_session_stores.values())
        _session_stores.clear()
        _long_term_stores.clear()
    for store in stores:
        try:
            store.close()
        except Exception:  # closing is best effort: the store is dropped either way
            logger.exception("could not close the session store %s", store.url)


def summarizer_plugin(name: str, model: str) -> Any | None:
    """Load a summarizer factory registered under the ``tiered_memory.summarizers`` entry points."""
    for entry in entry_points(group=SUMMARIZER_ENTRY_POINTS):
        if entry.name != name:
            continue
        try:
            factory = entry.load()
            return factory(model=model)
        except ImportError as exc:
            logger.info("summarizer plugin %r unavailable: %s", name, exc)
            return None
    return None
