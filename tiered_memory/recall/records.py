"""Tier-3 records: what is stored for a message, what a recall asks and what it returns."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class RecallHit:
    """One recalled message, with where and when it was said."""

    text: str
    score: float
    role: str
    session_id: str
    created_at: datetime
    message_id: str
    user_id: str
    name: str | None = None
    valid_to: datetime | None = None
    """For a fact (``role == "fact"``): when it stopped holding; None while it holds."""
    source_message_id: str | None = None
    """For a fact: the message it came from (in ``session_id``); ``message_id`` is the fact's."""

    @property
    def is_fact(self) -> bool:
        return self.role == "fact"

    @property
    def superseded(self) -> bool:
        """A fact that no longer holds ("was true until ...")."""
        return self.is_fact and self.valid_to is not None


@dataclass(frozen=True)
class LongTermRecord:
    """What Tier 3 stores for one message."""

    user_id: str
    session_id: str
    message_id: str
    role: str
    text: str
    created_at: datetime
    embedding: Sequence[float]
    name: str | None = None
    seq: int = -1  # position in its session, for neighbour-aware ranking

    @property
    def key(self) -> str:
        return record_key(self.session_id, self.message_id)


@dataclass(frozen=True)
class RecallQuery:
    """A validated recall request (timestamps in seconds since the epoch, UTC)."""

    text: str
    k: int
    session_id: str | None = None
    since: float | None = None
    until: float | None = None
    exclude_window: bool = True
    as_of: float | None = None
    """Facts valid then and turns said up to then (``until`` is capped at it)."""
    now: float | None = None
    """When the question is asked: relative dates ("last week") resolve against it."""

    def chroma_filters(self) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        if self.session_id is not None:
            filters.append({"session_id": self.session_id})
        if self.since is not None:
            filters.append({"created_ts": {"$gte": self.since}})
        if self.until is not None:
            filters.append({"created_ts": {"$lte": self.until}})
        return filters


@dataclass(frozen=True)
class StoredHit:
    record_key: str
    text: str
    metadata: Mapping[str, Any]
    distance: float


def record_key(session_id: str, message_id: str) -> str:
    """Stable vector-store id of a message: idempotent upserts after a crash or a retry."""
    return hashlib.sha256(f"{session_id}\x1f{message_id}".encode()).hexdigest()[:40]


def record_metadata(record: LongTermRecord) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "user_id": record.user_id,
        "session_id": record.session_id,
        "message_id": record.message_id,
        "role": record.role,
        "created_at": record.created_at.isoformat(),
        "created_ts": record.created_at.timestamp(),
        "seq": record.seq,
    }
    if record.name:
        meta["name"] = record.name
    return meta


def hit_from_metadata(text: str, metadata: Mapping[str, Any], score: float) -> RecallHit:
    meta = metadata
    created = datetime.fromisoformat(str(meta.get("created_at")))
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return RecallHit(
        text=text,
        score=float(score),  # a plain float, never a numpy scalar from the ranking
        role=str(meta.get("role", "")),
        session_id=str(meta.get("session_id", "")),
        created_at=created,
        message_id=str(meta.get("message_id", "")),
        user_id=str(meta.get("user_id", "")),
        name=meta.get("name"),
    )


__all__ = [
    "LongTermRecord",
    "RecallHit",
    "RecallQuery",
    "StoredHit",
    "hit_from_metadata",
    "record_key",
    "record_metadata",
]
