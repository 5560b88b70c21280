"""The long-term vector store: the LongTermStore protocol and ChromaDB (one collection per user).

Recall is per user by construction: a user's vectors live in that user's own collection, and
every read also checks the ``user_id`` metadata, so no code path can return another user's text.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, StoreError
from .records import LongTermRecord, StoredHit, record_metadata


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

    def delete(self, user_id: str, keys: Sequence[str]) -> None: ...

    def delete_user(self, user_id: str) -> None: ...

    def count(self, user_id: str) -> int: ...

    def records(self, user_id: str) -> list[StoredHit]:
        """Every record of ``user_id`` (distance 0), to rebuild the lexical index."""
        ...


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
    ) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        try:
            if client is not None:
                self.client = client
            elif host:
                self.client = chromadb.HttpClient(
                    host=host, port=port, ssl=ssl, headers=dict(headers or {}), settings=settings
                )
            elif path is not None:
                directory = Path(path) / "chroma"
                directory.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(path=str(directory), settings=settings)
            else:
                raise ConfigError("ChromaLongTermStore needs a path, a host or a client")
        except ConfigError:
            raise
        except Exception as exc:
            where = f"{host}:{port}" if host else str(path)
            raise StoreError(f"cannot open ChromaDB at {where}: {exc}") from exc
        self.prefix = collection_prefix
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

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
                    metadata={"hnsw:space": "cosine", "user_id": user_id},
                )
                self._collections[user_id] = collection
            return collection

    def upsert(self, user_id: str, records: Sequence[LongTermRecord]) -> None:
        if not records:
            return
        if any(r.user_id != user_id for r in records):
            raise StoreError("refusing to store a record under another user's collection")
        try:
            self._collection(user_id).upsert(
                ids=[r.key for r in records],
                embeddings=[list(r.embedding) for r in records],
                documents=[r.text for r in records],
                metadatas=[record_metadata(r) for r in records],
            )
        except Exception as exc:
            raise StoreError(f"ChromaDB upsert failed: {exc}") from exc

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
        try:
            result = self._collection(user_id).query(
                query_embeddings=[list(embedding)],
                n_results=max(1, n_results),
                where=condition,
                include=["distances"],
            )
        except Exception as exc:
            raise StoreError(f"ChromaDB query failed: {exc}") from exc
        ids = result["ids"][0] if result["ids"] else []
        distances = result["distances"][0] if result["distances"] else []
        return [(key, float(d)) for key, d in zip(ids, distances, strict=True)]

    def fetch(self, user_id: str, keys: Sequence[str]) -> list[StoredHit]:
        """The records with these keys (only those that belong to ``user_id``)."""
        if not keys:
            return []
        try:
            batch = self._collection(user_id).get(
                ids=list(keys), include=["documents", "metadatas"]
            )
        except Exception as exc:
            raise StoreError(f"ChromaDB get failed: {exc}") from exc
        return [
            StoredHit(key, text or "", meta or {}, 0.0)
            for key, text, meta in zip(
                batch["ids"], batch["documents"] or [], batch["metadatas"] or [], strict=False
            )
            if (meta or {}).get("user_id") == user_id  # defence in depth
        ]

    def delete(self, user_id: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            self._collection(user_id).delete(ids=list(keys))
        except Exception as exc:
            raise StoreError(f"ChromaDB delete failed: {exc}") from exc

    def delete_user(self, user_id: str) -> None:
        with self._lock:
            self._collections.pop(user_id, None)
        try:
            self.client.delete_collection(self.collection_name(user_id))
        except Exception as exc:  # a user with no collection yet is fine
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise StoreError(f"ChromaDB delete_collection failed: {exc}") from exc

    def count(self, user_id: str) -> int:
        try:
            return int(self._collection(user_id).count())
        except Exception as exc:
            raise StoreError(f"ChromaDB count failed: {exc}") from exc

    def records(self, user_id: str) -> list[StoredHit]:
        out: list[StoredHit] = []
        page = 5000
        try:
            collection = self._collection(user_id)
            offset = 0
            while True:
                batch = collection.get(
                    include=["documents", "metadatas"], limit=page, offset=offset
                )
                for key, text, meta in zip(
                    batch["ids"], batch["documents"] or [], batch["metadatas"] or [], strict=False
                ):
                    if (meta or {}).get("user_id") == user_id:
                        out.append(StoredHit(key, text or "", meta or {}, 0.0))
                if len(batch["ids"]) < page:
                    return out
                offset += page
        except Exception as exc:
            raise StoreError(f"ChromaDB get failed: {exc}") from exc


__all__ = ["ChromaLongTermStore", "LongTermStore"]
