"""Process-wide resources, owned by one closeable object: stores, caches, the background worker.

Every :class:`~tiered_memory.TieredMemory` of a process shares one :class:`Resources` (the
default, made on first use and again after a fork) unless it is given its own. Sharing is by
location: one engine per session-store URL, one Chroma client per directory or server. Nothing
here lets one session's fault reach another: the worker runs one job per session, summarizer
calls never share a thread pool, and no per-user index is kept (BM25 runs in the session store).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .config import MemoryConfig
from .errors import ConfigError, StoreError
from .recall.chroma import ChromaLongTermStore
from .store import SqlSessionStore
from .summary.calls import SummarizerCall
from .worker import BackgroundWorker, Foreground

logger = logging.getLogger("tiered_memory")

SUMMARIZER_ENTRY_POINTS = "tiered_memory.summarizers"


class Resources:
    """What the memories of a process share; ``close()`` really closes it.

    Args:
        worker_threads: the most background jobs (one per session) running at once.
    """

    def __init__(self, *, worker_threads: int = 16) -> None:
        self._lock = threading.Lock()
        self._session_stores: dict[str, SqlSessionStore] = {}
        self._long_term_stores: dict[tuple[Any, ...], ChromaLongTermStore] = {}
        self._calls: weakref.WeakValueDictionary[tuple[str, ...], SummarizerCall] = (
            weakref.WeakValueDictionary()
        )
        self.worker = BackgroundWorker(worker_threads)
        self.foreground = Foreground()
        self.closed = False

    def __enter__(self) -> Resources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session_store(self, path: Path, config: MemoryConfig) -> SqlSessionStore:
        """The session store for ``config.session_store_url`` or SQLite under ``path``."""
        url = config.session_store_url or f"sqlite:///{path.resolve() / 'sessions.sqlite3'}"
        with self._lock:
            self._check_open()
            store = self._session_stores.get(url)
            if store is None:
                if url.startswith("sqlite:///"):
                    _make_directory(Path(url.removeprefix("sqlite:///")).parent)
                store = SqlSessionStore(url, timeout=config.store_timeout)
                self._session_stores[url] = store
            return store

    def long_term_store(self, path: Path, config: MemoryConfig) -> ChromaLongTermStore:
        """The Chroma store: a server if ``config.chroma_host``, else embedded under ``path``."""
        if config.chroma_host:
            key: tuple[Any, ...] = (
                "http", config.chroma_host, config.chroma_port, config.chroma_ssl,
                tuple(sorted((config.chroma_headers or {}).items())), config.collection_prefix,
            )  # fmt: skip
        else:
            key = ("path", str(path.resolve()), config.collection_prefix)
        with self._lock:
            self._check_open()
            store = self._long_term_stores.get(key)
            if store is None:
                if config.chroma_host:
                    store = ChromaLongTermStore(
                        host=config.chroma_host, port=config.chroma_port, ssl=config.chroma_ssl,
                        headers=config.chroma_headers, collection_prefix=config.collection_prefix,
                        timeout=config.store_timeout,
                    )  # fmt: skip
                else:
                    _make_directory(path)
                    store = ChromaLongTermStore(
                        path=path, collection_prefix=config.collection_prefix,
                        open_collections=config.chroma_open_collections,
                    )  # fmt: skip
                self._long_term_stores[key] = store
            return store

    def summarizer_call(self, *key: str) -> SummarizerCall:
        """The one summarizer-call guard of a session (shared by its memory objects)."""
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                call = SummarizerCall(key[-1][:32])
                self._calls[key] = call
            return call

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("these tiered-memory resources are closed; open a new TieredMemory")

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the worker (waiting up to ``timeout`` s for running jobs), close every store.

        What was not summarized or indexed stays pending in the session store, for the next
        process. Returns False if a background job was still running at the deadline.
        """
        self.foreground.stop()  # running jobs stop waiting for gaps: finish them now
        finished = self.worker.close(timeout)
        with self._lock:
            self.closed = True
            sessions = list(self._session_stores.values())
            vectors = list(self._long_term_stores.values())
            self._session_stores.clear()
            self._long_term_stores.clear()
        closers = [s.close for s in sessions] + [v.close for v in vectors]
        for close in closers:
            try:
                close()
            except Exception:  # closing is best effort: the store is dropped either way
                logger.exception("could not close %r", getattr(close, "__self__", close))
        return finished


_default: Resources | None = None
_default_lock = threading.Lock()


def default_resources() -> Resources:
    """The process's shared resources (made on first use, and anew in a forked child)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Resources()
        return _default


def reset_default_resources(timeout: float = 5.0) -> None:
    """Close the process's shared resources; the next memory opens new ones."""
    global _default
    with _default_lock:
        current, _default = _default, None
    if current is not None:
        current.close(timeout)


def _after_fork_in_child() -> None:
    global _default
    _default = None  # the parent's threads and connections do not exist here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(lambda: reset_default_resources(timeout=2.0))


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(f"path {str(path)!r} is not a directory (a file is in the way)") from exc
    except PermissionError as exc:
        raise ConfigError(f"path {str(path)!r} cannot be created: permission denied") from exc
    if not path.is_dir():
        raise ConfigError(f"path {str(path)!r} is not a directory")


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


__all__ = ["Resources", "default_resources", "reset_default_resources", "summarizer_plugin"]
