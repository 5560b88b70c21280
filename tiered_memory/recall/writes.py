"""Memory the agent writes on purpose: save, update and delete one fact of the memory's user.

A saved memory is a user-authored message with metadata ``{"kind": "memory"}`` in the user's
dedicated session :data:`MEMORIES_SESSION`, written to Tier 3 at once, so every later recall of
the user (from any session) finds it. Its id is the message id. An update saves the new text with
a new id (metadata ``"replaces"``: the old id) and then forgets the old one; a delete forgets it
from every tier. Everything is scoped to the given memory's user; only saved memories (never
chat messages) can be updated or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import InvalidMessageError
from ..memory import TieredMemory
from ..messages import Message
from ..validation import check_id
from .tool import MEMORIES_SESSION

MAX_MEMORY_CHARS = 2000
MEMORY_KIND = "memory"


@dataclass(frozen=True)
class SavedMemory:
    """One memory the agent saved."""

    id: str
    """The message id: what update and delete take."""
    text: str
    created_at: datetime
    replaces: str | None = None
    """The id of the memory this one replaced (an update), if any."""


def memories_of(memory: TieredMemory) -> TieredMemory:
    """The memories session of ``memory``'s user, on the same stores, config and models."""
    if memory.session_id == MEMORIES_SESSION:
        return memory
    return TieredMemory(
        MEMORIES_SESSION, memory.user_id, memory.path, memory.config, memory.summarizer,
        memory.embedder, session_store=memory.store, long_term=memory.long_term,
        resources=memory.resources,
    )  # fmt: skip


def check_text(text: object) -> str:
    """A memory's text: a non-empty string of at most :data:`MAX_MEMORY_CHARS` characters."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidMessageError("a memory must be a non-empty text")
    if len(text) > MAX_MEMORY_CHARS:
        raise InvalidMessageError(
            f"a memory is at most {MAX_MEMORY_CHARS} characters (got {len(text)}); save one fact"
        )
    return text.strip()


def _saved(message: Message) -> SavedMemory:
    replaces = message.metadata.get("replaces")
    return SavedMemory(
        message.id, message.content, message.created_at,
        replaces if isinstance(replaces, str) else None,
    )  # fmt: skip


def _is_memory(message: Message) -> bool:
    return message.metadata.get("kind") == MEMORY_KIND


def _metadata(replaces: str | None) -> dict[str, Any]:
    return (
        {"kind": MEMORY_KIND} if replaces is None else {"kind": MEMORY_KIND, "replaces": replaces}
    )


def _find(messages: list[Message], memory_id: object) -> str:
    wanted = check_id(memory_id, "memory id", InvalidMessageError)
    if not any(m.id == wanted and _is_memory(m) for m in messages):
        raise InvalidMessageError(
            f"no saved memory with id {wanted!r} for this user (ids come from save_memory or "
            "from recall_memory's 'memory id:')"
        )
    return wanted


# --- sync ------------------------------------------------------------------------------------


def save_memory(memory: TieredMemory, text: str, *, replaces: str | None = None) -> SavedMemory:
    """Save ``text`` as a memory of ``memory``'s user; it is in Tier 3 when this returns.

    Raises:
        InvalidMessageError: ``text`` is empty, not a string or too long.
    """
    clean = check_text(text)
    target = memories_of(memory)
    message = target.add("user", clean, metadata=_metadata(replaces))
    target.flush()
    return SavedMemory(message.id, clean, message.created_at, replaces)


def update_memory(memory: TieredMemory, memory_id: str, text: str) -> SavedMemory:
    """Replace the saved memory ``memory_id`` by ``text`` (a new id, linked to the old one).

    Raises:
        InvalidMessageError: no saved memory of this user has that id, or ``text`` is bad.
    """
    clean = check_text(text)
    target = memories_of(memory)
    old = _find(target.history(), memory_id)
    saved = save_memory(target, clean, replaces=old)
    target.forget(message_id=old)
    return saved


def delete_memory(memory: TieredMemory, memory_id: str) -> str:
    """Delete the saved memory ``memory_id`` from every tier; returns its id.

    Raises:
        InvalidMessageError: no saved memory of this user has that id.
    """
    target = memories_of(memory)
    wanted = _find(target.history(), memory_id)
    target.forget(message_id=wanted)
    return wanted


def list_memories(memory: TieredMemory) -> list[SavedMemory]:
    """The saved memories of ``memory``'s user, oldest first."""
    return [_saved(m) for m in memories_of(memory).history() if _is_memory(m)]


# --- async -----------------------------------------------------------------------------------


async def asave_memory(
    memory: TieredMemory, text: str, *, replaces: str | None = None
) -> SavedMemory:
    clean = check_text(text)
    target = memories_of(memory)
    message = await target.aadd("user", clean, metadata=_metadata(replaces))
    await target.aflush()
    return SavedMemory(message.id, clean, message.created_at, replaces)


async def aupdate_memory(memory: TieredMemory, memory_id: str, text: str) -> SavedMemory:
    clean = check_text(text)
    target = memories_of(memory)
    old = _find(await target.ahistory(), memory_id)
    saved = await asave_memory(target, clean, replaces=old)
    await target.aforget(message_id=old)
    return saved


async def adelete_memory(memory: TieredMemory, memory_id: str) -> str:
    target = memories_of(memory)
    wanted = _find(await target.ahistory(), memory_id)
    await target.aforget(message_id=wanted)
    return wanted


async def alist_memories(memory: TieredMemory) -> list[SavedMemory]:
    return [_saved(m) for m in await memories_of(memory).ahistory() if _is_memory(m)]


__all__ = [
    "MAX_MEMORY_CHARS",
    "MEMORIES_SESSION",
    "MEMORY_KIND",
    "SavedMemory",
    "adelete_memory",
    "alist_memories",
    "asave_memory",
    "aupdate_memory",
    "check_text",
    "delete_memory",
    "list_memories",
    "memories_of",
    "save_memory",
    "update_memory",
]
