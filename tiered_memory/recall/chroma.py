"""The long-term vector store: the LongTermStore protocol and ChromaDB (one collection per user).

Recall is per user by construction: a user's vectors live in that user's own collection, and
every read also checks the ``user_id`` metadata, so no code path can return another user's text.

Chroma keeps each collection's HNSW index in memory once opened (about 3 MB even for a few
vectors) and, by default, up to the open-file limit / 5 of them per process; it writes an index
to disk only every ``sync_threshold`` records (1,000), replaying the rest on a process's first
query, and an index it closed before writing it loses those records in that process (or cannot
be opened again: "Nothing found on disk"). So an embedded store here caps the open indexes per
process (``open_collections``, least recently used closed first) and has every collection write
its index after each write (``sync_threshold`` 1: Chroma writes only the changed elements, so a
5-record write into 50,000 records took no longer than with 1,000). Writing in place, a killed
writer can tear those files, and Chroma's loader may crash on torn ones rather than refuse them:
the first open of a collection in a process checks them first (``hnsw_files``).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..errors import ConfigError, EmbedderChangedError, StoreError, VectorIndexLostError
from .hnsw_files import named_segment_dir, torn_reason, vector_segment_dir
from .records import LongTermRecord, StoredHit, record_metadata

logger = logging.getLogger("tiered_memory")

T = TypeVar("T")

OPEN_COLLECTIONS = 64
"""Default cap of user indexes an embedded store keeps open in a process (see the module doc;
``MemoryConfig.chroma_open_collections``)."""
ON_EVERY_WRITE = {"sync_threshold": 1, "batch_size": 100}


class LongTermStore(Protocol):
    """A per-user vector store. ``ChromaLongTermStore`` is the implementation."""

    def upsert(self, user_id: str, records: Sequence[LongTermRecord]) -> None: ...

    def nearest(
        self,
        user_id: str,
        embedding: Sequence[float],
        n_results: int,
        filters: Sequence[Mapping[str, Any]] = (),
    ) -> list[tuple[str, float]]: ...

    def fetch(self, user_id: str, keys: Sequence[str]) -> list[StoredHit]: ...

    def embeddings(self, user_id: str, keys: Sequence[str]) -> dict[str, Sequence[float]]:
        """The vectors of these records of ``user_id`` (a key without one is left out)."""
        ...

    def delete(self, user_id: str, keys: Sequence[str]) -> None: ...

    def delete_user(self, user_id: str) -> None: ...

    def count(self, user_id: str) -> int: ...

    def embedder_of(self, user_id: str) -> str | None:
        """The embedder recorded as the maker of the user's vectors (None: none recorded)."""
        ...

    def record_embedder(self, user_id: str, embedder: str) -> None: ...

    def records(self, user_id: str) -> list[StoredHit]:
        """Every record of ``user_id`` (distance 0)."""
        ...

    def close(self) -> None: ...


class ChromaLongTermStore:
    """ChromaDB: embedded ``PersistentClient`` under ``path``, or ``HttpClient`` for a server."""

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        host: str | None = None,
        port: int = 8000,
        ssl: bool = False,
        headers: Mapping[str, str] | None = None,
        client: Any | None = None,
        collection_prefix: str = "tiered_memory",
        timeout: float = 30.0,
        open_collections: int = OPEN_COLLECTIONS,
    ) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        self._index_files: Path | None = None  # the embedded store's directory
        where = f"{host}:{port}" if host else str(path)
        try:
            if client is not None:
                self.client = client
            elif host:
                self.client = _bounded(
                    lambda: chromadb.HttpClient(
                        host=host,
                        port=port,
                        ssl=ssl,
                        headers=dict(headers or {}),
                        settings=settings,
                    ),
                    timeout,
                    f"connecting to the Chroma server at {where} (is it up and answering?)",
                )
                _set_http_timeout(self.client, timeout)
            elif path is not None:
                directory = Path(path) / "chroma"
                directory.mkdir(parents=True, exist_ok=True)
                self.client = _persistent_client(directory, settings, open_collections)
                self._index_files = directory
            else:
                raise ConfigError("ChromaLongTermStore needs a path, a host or a client")
        except (ConfigError, StoreError):
            raise
        except Exception as exc:
            raise StoreError(f"cannot open ChromaDB at {where}: {exc}") from exc
        self.where = where
        self.prefix = collection_prefix
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._owns_client = client is None

    def __repr__(self) -> str:
        return f"ChromaLongTermStore({self.where!r})"

    def collection_name(self, user_id: str) -> str:
        digest = hashlib.sha256(user_id.encode()).hexdigest()[:32]
        return f"{self.prefix}_{digest}"

    def _collection(self, user_id: str) -> Any:
        with self._lock:
            collection = self._collections.get(user_id)
            if collection is None:
                collection = self.client.get_or_create_collection(
                    name=self.collection_name(user_id),
                    embedding_function=None,
                    metadata={"user_id": user_id},
                    configuration={"hnsw": {"space": "cosine", **ON_EVERY_WRITE}},
                )
                if self._index_files is not None:
                    self._check_index_files(user_id, collection)
                self._settle(collection)
                self._collections[user_id] = collection
            return collection

    def _check_index_files(self, user_id: str, collection: Any) -> None:
        """Before this process first loads the collection's index: files a killed writer left
        torn would crash Chroma's loader (see ``hnsw_files``), so such an index is dropped
        unread and ``VectorIndexLostError`` raised (the caller rebuilds it)."""
        assert self._index_files is not None
        segment = vector_segment_dir(self._index_files, str(collection.id))
        if segment is None:
            return
        with _CHECKED_LOCK:
            if segment in _CHECKED:
                return
            reason = torn_reason(segment)
            if reason is None:
                _CHECKED.add(segment)
                return
        logger.warning(
            "the HNSW files of user %r at %s are torn (%s), as a process killed while writing "
            "them leaves them; dropping that index", user_id, segment, reason,
        )  # fmt: skip
        self._drop_collection(self.collection_name(user_id), segment)  # (under self._lock)
        raise VectorIndexLostError(
            f"ChromaDB at {self.where}: the index files of user {user_id!r} were torn "
            f"({reason}) and the index was dropped unread"
        )

    def _settle(self, collection: Any) -> None:
        """On first open here: a collection made by an older version (or by hand) writes its
        index only every ``sync_threshold`` records; it is set to write on every write, and one
        record is written again so that what it held only in memory is on disk."""
        hnsw = (getattr(collection, "configuration_json", None) or {}).get("hnsw") or {}
        if int(hnsw.get("sync_threshold") or 1000) <= ON_EVERY_WRITE["sync_threshold"]:
            return
        collection.modify(configuration={"hnsw": dict(ON_EVERY_WRITE)})
        one = collection.get(limit=1, include=["embeddings", "documents", "metadatas"])
        if one["ids"]:
            collection.upsert(
                ids=one["ids"], embeddings=one["embeddings"], documents=one["documents"],
                metadatas=one["metadatas"],
            )  # fmt: skip

    def _op(self, user_id: str, what: str, operation: Callable[[Any], T]) -> T:
        """Run ``operation`` on the user's collection; a handle made stale by another process
        (which deleted and re-created the collection) is dropped and the call retried once."""
        made_by: str | None = None  # the embedder recorded on a handle found stale
        for attempt in (1, 2):
            try:
                collection = self._collection(user_id)
                remade_by = _embedder_of(collection) if made_by is not None else None
                if remade_by not in (None, made_by):
                    raise EmbedderChangedError(
                        f"the vectors of user {user_id!r} were re-made by embedder "
                        f"{remade_by!r} in another process (this one wrote "
                        f"{made_by!r} vectors); open the memory with that embedder"
                    )
                return operation(collection)
            except (EmbedderChangedError, VectorIndexLostError):
                raise
            except Exception as exc:
                if attempt == 1 and _is_missing(exc):
                    with self._lock:
                        stale = self._collections.pop(user_id, None)
                    made_by = _embedder_of(stale) if stale is not None else None
                    continue
                if _is_unreadable(exc):
                    self.delete_user(user_id)
                    raise VectorIndexLostError(
                        f"ChromaDB {what} at {self.where}: the index of user {user_id!r} could "
                        f"not be read and was dropped: {exc}"
                    ) from exc
                raise StoreError(f"ChromaDB {what} failed at {self.where}: {exc}") from exc
        raise AssertionError("unreachable")

    def upsert(self, user_id: str, records: Sequence[LongTermRecord]) -> None:
        if not records:
            return
        if any(r.user_id != user_id for r in records):
            raise StoreError("refusing to store a record under another user's collection")
        self._op(
            user_id,
            "upsert",
            lambda c: c.upsert(
                ids=[r.key for r in records],
                embeddings=[list(r.embedding) for r in records],
                documents=[r.text for r in records],
                metadatas=[record_metadata(r) for r in records],
            ),
        )

    def nearest(
        self,
        user_id: str,
        embedding: Sequence[float],
        n_results: int,
        filters: Sequence[Mapping[str, Any]] = (),
    ) -> list[tuple[str, float]]:
        """``(record key, cosine distance)`` of the nearest records; ``filters`` are ANDed
        Chroma where-clauses. The collection is the user's own, so no user filter is needed
        (Chroma answers an unfiltered query several times faster)."""
        condition: Mapping[str, Any] | None = None
        if filters:
            condition = filters[0] if len(filters) == 1 else {"$and": list(filters)}
        result = self._op(
            user_id,
            "query",
            lambda c: c.query(
                query_embeddings=[list(embedding)],
                n_results=max(1, n_results),
                where=condition,
                include=["distances"],
            ),
        )
        ids = result["ids"][0] if result["ids"] else []
        distances = result["distances"][0] if result["distances"] else []
        return [(key, float(d)) for key, d in zip(ids, distances, strict=True)]

    def fetch(self, user_id: str, keys: Sequence[str]) -> list[StoredHit]:
        """The records with these keys (only those that belong to ``user_id``)."""
        if not keys:
            return []
        batch = self._op(
            user_id, "get", lambda c: c.get(ids=list(keys), include=["documents", "metadatas"])
        )
        return _owned(user_id, batch)

    def embeddings(self, user_id: str, keys: Sequence[str]) -> dict[str, Sequence[float]]:
        if not keys:
            return {}
        batch = self._op(
            user_id, "get", lambda c: c.get(ids=list(keys), include=["embeddings", "metadatas"])
        )
        vectors = batch["embeddings"] if batch["embeddings"] is not None else []
        return {  # the vectors as Chroma gives them (arrays): the caller stacks them
            key: vector
            for key, vector, meta in zip(
                batch["ids"], vectors, batch["metadatas"] or [], strict=False
            )
            if (meta or {}).get("user_id") == user_id  # defence in depth
        }

    def delete(self, user_id: str, keys: Sequence[str]) -> None:
        if keys:
            self._op(user_id, "delete", lambda c: c.delete(ids=list(keys)))

    def delete_user(self, user_id: str) -> None:
        """Drop the user's collection; an embedded store also removes its HNSW files, which
        Chroma leaves on disk (they hold the user's vectors and record ids)."""
        with self._lock:
            self._collections.pop(user_id, None)
        name = self.collection_name(user_id)
        files = named_segment_dir(self._index_files, name) if self._index_files else None
        self._drop_collection(name, files)

    def _drop_collection(self, name: str, files: Path | None) -> None:
        try:
            self.client.delete_collection(name)
        except Exception as exc:  # a user with no collection yet is fine
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise StoreError(f"ChromaDB delete_collection failed: {exc}") from exc
        if files is not None:
            _remove_index_files(files)

    def count(self, user_id: str) -> int:
        return int(self._op(user_id, "count", lambda c: c.count()))

    def embedder_of(self, user_id: str) -> str | None:
        return self._op(user_id, "read metadata", _embedder_of)

    def record_embedder(self, user_id: str, embedder: str) -> None:
        """Kept in the collection's metadata, beside the user id."""
        metadata = {"user_id": user_id, "embedder": embedder}
        self._op(user_id, "modify", lambda c: c.modify(metadata=metadata))

    def records(self, user_id: str) -> list[StoredHit]:
        out: list[StoredHit] = []
        page, offset = 5000, 0
        while True:
            batch = self._op(
                user_id,
                "get",
                lambda c, at=offset: c.get(  # type: ignore[misc]
                    include=["documents", "metadatas"], limit=page, offset=at
                ),
            )
            out += _owned(user_id, batch)
            if len(batch["ids"]) < page:
                return out
            offset += page

    def close(self) -> None:
        """Drop the collection handles and release the client made here (a client passed in
        stays the caller's). Chroma shares one system per directory in a process: released, the
        next store on that directory opens it afresh (a deleted directory is not reused)."""
        with self._lock:
            self._collections.clear()
            close = getattr(self.client, "close", None) if self._owns_client else None
            self._owns_client = False
        if close is not None:
            try:
                close()
            except Exception as exc:  # closing never raises; the process may be exiting
                logger.debug("closing the Chroma client at %s failed: %r", self.where, exc)
            if self._index_files is not None and not _system_running(self._index_files):
                with _CHECKED_LOCK:  # no index here is loaded now: the next open checks again
                    _CHECKED.difference_update(
                        {d for d in _CHECKED if d.parent == self._index_files}
                    )


_SYSTEMS_LOCK = threading.Lock()
_CHECKED_LOCK = threading.Lock()
_CHECKED: set[Path] = set()  # index directories found whole by this process (before loading)


def _remove_index_files(segment: Path) -> None:
    """Remove a dropped collection's HNSW directory (nothing in Chroma's catalogue names it)."""
    shutil.rmtree(segment, ignore_errors=True)
    with _CHECKED_LOCK:
        _CHECKED.discard(segment)


def _system_running(directory: Path) -> bool:
    """Whether this process still runs Chroma's shared system for ``directory``."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:
        return True
    return str(directory) in SharedSystemClient._identifier_to_system


def _persistent_client(directory: Path, settings: Any, open_collections: int) -> Any:
    """``chromadb.PersistentClient`` on ``directory`` whose process-wide index cache holds at most
    ``open_collections`` collections.

    Chroma reads that cap once, when it starts the directory's shared system, from the open-file
    limit; there is no setting for it. So the system is started here with the cap (Chroma's
    internals: if they change, the default system is used and a warning says so). A system that
    already runs for the directory in this process is shared as it is.
    """
    import chromadb

    if open_collections < 1:
        raise ConfigError(f"open_collections must be >= 1, got {open_collections!r}")
    settings.persist_directory = str(directory)
    settings.is_persistent = True
    try:
        from chromadb.api import ServerAPI
        from chromadb.api.shared_system_client import SharedSystemClient
        from chromadb.config import System
        from chromadb.telemetry.product import ProductTelemetryClient

        with _SYSTEMS_LOCK:
            systems = SharedSystemClient._identifier_to_system
            if str(directory) not in systems:
                system = System(settings)
                system.instance(ProductTelemetryClient)  # type: ignore[type-abstract]
                api: Any = system.instance(ServerAPI)  # type: ignore[type-abstract]
                if isinstance(getattr(api, "hnsw_cache_size", None), int):
                    api.hnsw_cache_size = min(api.hnsw_cache_size, open_collections)
                else:
                    logger.warning(
                        "this chromadb has no index cache to cap; open_collections unused"
                    )
                system.start()
                systems[str(directory)] = system
            return chromadb.PersistentClient(path=str(directory), settings=settings)
    except (AttributeError, ImportError) as exc:
        logger.warning("cannot cap Chroma's open indexes (%r); using its default", exc)
        return chromadb.PersistentClient(path=str(directory), settings=settings)


def _owned(user_id: str, batch: Mapping[str, Any]) -> list[StoredHit]:
    return [
        StoredHit(key, text or "", meta or {}, 0.0)
        for key, text, meta in zip(
            batch["ids"], batch["documents"] or [], batch["metadatas"] or [], strict=False
        )
        if (meta or {}).get("user_id") == user_id  # defence in depth
    ]


def _embedder_of(collection: Any) -> str | None:
    value = (getattr(collection, "metadata", None) or {}).get("embedder")
    return value if isinstance(value, str) else None


def _is_missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return "does not exist" in text or "not found" in text


# What Chroma (1.x) says of an HNSW index whose files a crash truncated or removed, e.g.
# "Error creating hnsw segment reader: Error deserializing pickle file: ... EOF while parsing".
_UNREADABLE_INDEX = (
    "hnsw segment reader",
    "hnsw segment writer",
    "deserializing pickle",
    "error loading hnsw index",
    "nothing found on disk",
    "error finding id",
)


def _is_unreadable(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(sign in text for sign in _UNREADABLE_INDEX)


def _bounded(make: Callable[[], T], timeout: float, what: str) -> T:
    """``make()`` within ``timeout`` seconds, else StoreError (the thread is left to finish)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = make()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="tm-chroma-connect").start()
    if not done.wait(timeout):
        raise StoreError(f"timed out after {timeout}s {what}")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _set_http_timeout(client: Any, timeout: float) -> None:
    """Chroma's HTTP client waits forever by default; bound every request by ``timeout``."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout)


__all__ = ["ChromaLongTermStore", "LongTermStore"]
