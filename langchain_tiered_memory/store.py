"""``TieredMemoryStore``: a LangGraph ``BaseStore`` whose search is tiered-memory recall.

Items (namespace, key, JSON value) live in one table beside the session store; the text of each
indexed item is also a message of its user's Tier 3 (session ``store:<namespace>``), so
``search(query=...)`` ranks with the core's hybrid recall and the user's recall tool finds what an
agent saved through LangMem or ``runtime.store``. Which namespace label names the user is set by
``user_label`` (the last label by default: LangMem's ``("memories", "{langgraph_user_id}")``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)
from langgraph.store.base.embed import get_text_at_path

from tiered_memory import (
    ConfigError,
    ExtractiveSummarizer,
    InvalidMessageError,
    MemoryConfig,
    Message,
    TieredMemory,
)

from .history import MemoryCache

__all__ = ["STORE_SESSION_PREFIX", "TieredMemoryStore", "item_text"]

STORE_SESSION_PREFIX = "store:"
"""Session id prefix of the messages that carry store items in Tier 3."""
_SPEAKER = "memory"  # the name of the assistant messages carrying items
_MAX_RECALL = 1000  # the core's largest k
_SESSION_ID_MAX = 255


def item_text(value: Mapping[str, Any], fields: Sequence[str] | None) -> str:
    """The text of ``value`` that search ranks: ``fields`` (LangGraph paths), else every string.

    Every string leaf, in order, is what LangMem values (``{"content": ...}``) need; a field list
    follows LangGraph's path syntax (``"content"``, ``"facts[*].text"``, ``"$"``).
    """
    if fields:
        texts = [text for field in fields for text in get_text_at_path(value, field)]
        return "\n".join(t for t in texts if t.strip())
    leaves: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if node.strip():
                leaves.append(node)
        elif isinstance(node, Mapping):
            for child in node.values():
                walk(child)
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    walk(value)
    return "\n".join(leaves)


def _matches(value: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics: equality, nested dicts, ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_operator(value, op, arg) for op, arg in wanted.items())
        return isinstance(value, Mapping) and all(
            _matches(value.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(wanted)
            and all(_matches(v, w) for v, w in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _check_filter(wanted: Any) -> None:
    """Refuse an unknown ``$operator`` anywhere in a filter before any item is read."""
    if isinstance(wanted, Mapping):
        for key, child in wanted.items():
            if str(key).startswith("$") and key not in _OPERATORS:
                raise InvalidMessageError(
                    f"unsupported filter operator {key!r} (use {' '.join(_OPERATORS)})"
                )
            _check_filter(child)
    elif isinstance(wanted, (list, tuple)):
        for child in wanted:
            _check_filter(child)


def _operator(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(value == arg)
    if op == "$ne":
        return bool(value != arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        try:
            left, right = float(value), float(arg)
        except (TypeError, ValueError):
            return False
        return {
            "$gt": left > right,
            "$gte": left >= right,
            "$lt": left < right,
            "$lte": left <= right,
        }[op]
    raise InvalidMessageError(f"unsupported filter operator {op!r} (use $eq $ne $gt $gte $lt $lte)")


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = condition.path
    if len(namespace) < len(path):
        return False
    pairs = (
        zip(namespace, path, strict=False)
        if condition.match_type == "prefix"
        else zip(reversed(namespace), reversed(path), strict=False)
    )
    if condition.match_type not in ("prefix", "suffix"):
        raise InvalidMessageError(f"unsupported match type {condition.match_type!r}")
    return all(p == "*" or n == p for n, p in pairs)


class TieredMemoryStore(BaseStore):
    """A LangGraph ``BaseStore`` over tiered-memory: put/get/delete/search/list_namespaces.

    ``search(namespace_prefix, query=...)`` runs the core's hybrid recall (dense + BM25 + session
    lift) on the user's Tier 3 and returns items best first with their fused score (scores
    compare within one user only); without a query, items come newest first. ``filter`` follows
    LangGraph (equality, nested, ``$eq $ne $gt $gte $lt $lte``). Not supported: TTLs.

    Args:
        path: Directory of the embedded stores (shared with the chat memories of the same users).
        config: ``MemoryConfig`` (budgets, Chroma server, ``session_store_url``: the item table
            goes in that database too).
        embeddings: Any LangChain ``Embeddings`` or core embedder.
        user_label: Position of the namespace label that names the user (``-1``: the last).
        index_fields: Default fields whose text is searchable (LangGraph paths); ``None``: every
            string of the value. ``put(..., index=[...])`` overrides it per item; ``index=False``
            keeps an item out of query search.
        memory_factory: Build the memories yourself: ``memory_factory(user_id, session_id)``.

    Raises:
        ConfigError: A bad ``user_label`` or an unreachable item database.
    """

    supports_ttl = False

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] = "./.tiered_memory",
        config: MemoryConfig | None = None,
        embeddings: Any | None = None,
        user_label: int = -1,
        index_fields: Sequence[str] | None = None,
        memory_factory: Callable[[str, str], TieredMemory] | None = None,
    ) -> None:
        if isinstance(user_label, bool) or not isinstance(user_label, int):
            raise ConfigError(
                f"user_label must be an int (a namespace position), got {user_label!r}"
            )
        self.user_label = user_label
        self.index_fields = list(index_fields) if index_fields else None
        self.config = config or MemoryConfig()
        # The summary of a store session is never shown to a model: the offline summarizer.
        self.memories = MemoryCache(
            path=path,
            config=self.config,
            summarizer=ExtractiveSummarizer(),
            embeddings=embeddings,
            factory=memory_factory,
        )
        url = self.config.session_store_url
        if url is None:
            directory = Path(path)
            directory.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{directory.resolve() / 'langgraph_store.sqlite3'}"
        try:
            self._engine = sa.create_engine(url)
            metadata = sa.MetaData()
            self._items = sa.Table(
                "tm_langgraph_items",
                metadata,
                sa.Column("namespace", sa.Text, primary_key=True),
                sa.Column("key", sa.Text, primary_key=True),
                sa.Column("user_id", sa.Text, nullable=False, index=True),
                sa.Column("value", sa.Text, nullable=False),
                sa.Column("message_id", sa.Text, nullable=True),
                sa.Column("created_at", sa.Text, nullable=False),
                sa.Column("updated_at", sa.Text, nullable=False),
            )
            metadata.create_all(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            raise ConfigError(f"cannot open the LangGraph item table at {url!r}: {exc}") from exc
        self._lock = threading.RLock()

    # --- mapping ----------------------------------------------------------------------------

    def user_of(self, namespace: tuple[str, ...]) -> str:
        """The user a namespace belongs to (its ``user_label``-th label).

        Raises:
            InvalidNamespaceError: The namespace has no label at that position.
        """
        try:
            return namespace[self.user_label]
        except IndexError:
            raise InvalidNamespaceError(
                f"namespace {namespace} has no label {self.user_label} naming the user "
                f"(TieredMemoryStore(user_label=...))"
            ) from None

    @staticmethod
    def session_of(namespace: tuple[str, ...]) -> str:
        """The core session that carries a namespace's items in Tier 3."""
        joined = STORE_SESSION_PREFIX + ".".join(namespace)
        if len(joined) <= _SESSION_ID_MAX:
            return joined
        return STORE_SESSION_PREFIX + hashlib.sha256(joined.encode()).hexdigest()

    def _memory(self, namespace: tuple[str, ...]) -> TieredMemory:
        return self.memories.get(self.user_of(namespace), self.session_of(namespace))

    # --- the batch --------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order; one result per op (``None`` for a put)."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, PutOp):
                self._put(op)
                results.append(None)
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            else:
                raise InvalidMessageError(f"unknown store operation {type(op).__name__}")
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread (the item table and Chroma calls are blocking)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # --- operations -------------------------------------------------------------------------

    def _row(self, namespace: tuple[str, ...], key: str) -> Any:
        with self._engine.connect() as connection:
            return connection.execute(
                sa.select(self._items).where(
                    self._items.c.namespace == ".".join(namespace), self._items.c.key == key
                )
            ).first()

    @staticmethod
    def _item(row: Any) -> Item:
        return Item(
            namespace=tuple(row.namespace.split(".")),
            key=row.key,
            value=json.loads(row.value),
            created_at=datetime.fromisoformat(row.created_at),
            updated_at=datetime.fromisoformat(row.updated_at),
        )

    @staticmethod
    def _search_item(row: Any, score: float | None) -> SearchItem:
        return SearchItem(
            namespace=tuple(row.namespace.split(".")),
            key=row.key,
            value=json.loads(row.value),
            created_at=datetime.fromisoformat(row.created_at),
            updated_at=datetime.fromisoformat(row.updated_at),
            score=score,
        )

    def _get(self, op: GetOp) -> Item | None:
        row = self._row(op.namespace, op.key)
        return None if row is None else self._item(row)

    def _put(self, op: PutOp) -> None:
        if not op.namespace:
            raise InvalidNamespaceError("Namespace cannot be empty.")
        if op.namespace[0] == "langgraph":
            raise InvalidNamespaceError(
                f'Root label for namespace cannot be "langgraph": {op.namespace}'
            )
        if not isinstance(op.key, str) or not op.key:
            raise InvalidMessageError(f"a store key must be a non-empty string, got {op.key!r}")
        if op.ttl is not None:
            raise NotImplementedError(
                "TieredMemoryStore does not support TTLs (supports_ttl=False)"
            )
        memory = self._memory(op.namespace)  # validates the user id first
        with self._lock:
            old = self._row(op.namespace, op.key)
            if op.value is None:
                if old is not None:
                    self._drop(memory, old.message_id)
                    with self._engine.begin() as connection:
                        connection.execute(
                            sa.delete(self._items).where(
                                self._items.c.namespace == old.namespace,
                                self._items.c.key == old.key,
                            )
                        )
                return
            if not isinstance(op.value, Mapping):
                raise InvalidMessageError(
                    f"a store value must be a dict, got {type(op.value).__name__}"
                )
            try:
                value = json.dumps(dict(op.value))
            except (TypeError, ValueError) as exc:
                raise InvalidMessageError(f"a store value must be JSON data: {exc}") from None
            fields = None if op.index is None else op.index
            message_id = None
            if fields is not False:
                text = item_text(op.value, fields or self.index_fields)
                if text.strip():
                    message = Message(
                        role="assistant",
                        name=_SPEAKER,
                        content=text,
                        metadata={"store_namespace": list(op.namespace), "store_key": op.key},
                    )
                    message_id = memory.add_messages([message])[0].id
            if old is not None:
                self._drop(memory, old.message_id)
            now = datetime.now(timezone.utc).isoformat()
            row = {
                "namespace": ".".join(op.namespace),
                "key": op.key,
                "user_id": self.user_of(op.namespace),
                "value": value,
                "message_id": message_id,
                "updated_at": now,
            }
            with self._engine.begin() as connection:
                if old is None:
                    connection.execute(sa.insert(self._items).values(**row, created_at=now))
                else:
                    connection.execute(
                        sa.update(self._items)
                        .where(
                            self._items.c.namespace == old.namespace, self._items.c.key == old.key
                        )
                        .values(**row)
                    )

    @staticmethod
    def _drop(memory: TieredMemory, message_id: str | None) -> None:
        if message_id:
            memory.forget(message_id=message_id)

    def _rows_under(self, prefix: tuple[str, ...]) -> list[Any]:
        table = self._items
        query = sa.select(table)
        if prefix:
            joined = ".".join(prefix)
            query = query.where(
                sa.or_(
                    table.c.namespace == joined,
                    sa.func.substr(table.c.namespace, 1, len(joined) + 1) == joined + ".",
                )
            )
        with self._engine.connect() as connection:
            return list(connection.execute(query.order_by(table.c.updated_at.desc())))

    def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.limit < 0 or op.offset < 0:
            raise InvalidMessageError("search limit and offset must be >= 0")
        _check_filter(op.filter)
        every = self._rows_under(op.namespace_prefix)
        rows = [r for r in every if _matches(json.loads(r.value), op.filter or {})]
        if op.query is None:
            window = rows[op.offset : op.offset + op.limit]
            return [self._search_item(r, None) for r in window]
        indexed = sum(1 for r in every if r.message_id)
        scored = self._ranked(op.query, [r for r in rows if r.message_id], indexed)
        window = scored[op.offset : op.offset + op.limit]
        return [self._search_item(r, score) for r, score in window]

    def _ranked(self, query: str, rows: list[Any], indexed: int) -> list[tuple[Any, float]]:
        """Rows best first by the core's recall, one recall per user.

        ``indexed`` rows are under the prefix before filtering: the recall asks for that many
        (at most the core's 1000), so filtering afterwards loses nothing ranked.
        """
        by_user: dict[str, dict[str, Any]] = {}
        for row in rows:
            by_user.setdefault(row.user_id, {})[row.message_id] = row
        ranked: list[tuple[Any, float]] = []
        for user_id, wanted in by_user.items():
            namespaces = {tuple(r.namespace.split(".")) for r in wanted.values()}
            only = next(iter(namespaces)) if len(namespaces) == 1 else None
            session = self.session_of(only) if only else f"{STORE_SESSION_PREFIX}search"
            memory = self.memories.get(user_id, session)
            hits = memory.recall(
                query,
                k=min(_MAX_RECALL, indexed if only else _MAX_RECALL),
                session_id=session if only else None,
                exclude_window=False,
            )
            ranked.extend((wanted[h.message_id], h.score) for h in hits if h.message_id in wanted)
        ranked.sort(key=lambda pair: pair[1], reverse=True)
        return ranked

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        with self._engine.connect() as connection:
            joined = connection.execute(sa.select(self._items.c.namespace).distinct()).scalars()
            namespaces = [tuple(n.split(".")) for n in joined]
        if op.match_conditions:
            namespaces = [
                n for n in namespaces if all(_namespace_matches(c, n) for c in op.match_conditions)
            ]
        if op.max_depth is not None:
            namespaces = [n[: op.max_depth] for n in namespaces]
        unique = sorted(set(namespaces))
        return unique[op.offset : op.offset + op.limit]

    def close(self) -> None:
        """Write what waits for Tier 3 and release the item database."""
        self.memories.close()
        self._engine.dispose()
