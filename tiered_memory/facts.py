"""Facts that change: first-person statements as keyed facts with the time they held.

"I live in Paris" (May) and "I moved to Berlin" (October) become two facts of the key ``home``:
Paris, valid from May until October, and Berlin, valid since October. A new value for a key
closes the open fact (``valid_to``), never deletes it; "I no longer live in Berlin" closes it
without a successor. ``recorded_at`` is when the memory learned the fact.

Pure part: the :class:`FactExtractor` protocol, :class:`OfflineFactExtractor` (English
first-person patterns) and :func:`supersede`. Store part: :class:`FactBook` (one user, the
session store's ``tm_facts`` table). Not wired into compaction yet: call
:meth:`FactBook.observe` with the messages of a batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import InvalidMessageError, StoreError
from .messages import Message
from .store.schema import facts_table

Change = Literal["set", "end", "switch"]


@dataclass(frozen=True)
class Statement:
    """What one message says about a key: it has a value now, no longer holds, or switched."""

    attribute: str
    value: str
    change: Change
    said_at: datetime
    session_id: str
    message_id: str
    previous: str | None = None
    """For ``switch``: the value the user switched from ("from A to B")."""


@dataclass(frozen=True)
class Fact:
    """A fact about the user and the time it held (``valid_to`` None: it still holds)."""

    attribute: str
    value: str
    valid_from: datetime
    valid_to: datetime | None
    recorded_at: datetime
    session_id: str
    message_id: str
    fact_id: int = -1

    @property
    def current(self) -> bool:
        return self.valid_to is None

    def text(self) -> str:
        """One self-contained line: "User home: Berlin (since 2026-10-02)"."""
        since = self.valid_from.strftime("%Y-%m-%d")
        if self.valid_to is None:
            return f"User {self.attribute}: {self.value} (since {since})"
        until = self.valid_to.strftime("%Y-%m-%d")
        return f"User {self.attribute}: {self.value} (from {since}, was true until {until})"


@runtime_checkable
class FactExtractor(Protocol):
    """Turns messages into statements about the user (an LLM one can ride on compaction)."""

    def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]: ...


# --- the offline extractor -------------------------------------------------------------------

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_WHEN = (  # a time phrase after a value is no part of it ("moved to Berlin last week")
    rf"last\b|yesterday\b|today\b|this\s+(?:week|month|year)\b|recently\b|"
    rf"(?:in|on|since)\s+(?:{_MONTHS}|\d{{4}}|monday|tuesday|wednesday|thursday|friday|"
    rf"saturday|sunday)\b|(?:a|an|one|two|three|four|five|six|\d+)\s+\w+\s+ago\b"
)
_END = rf"(?=\s*(?:[.,;!?]|\band\b|\bbut\b|\bsince\b|\bnow\b|{_WHEN}|$))"
_VALUE = r"(?P<value>[^.,;!?\n]{1,60}?)" + _END
_VERBS: tuple[tuple[str, str], ...] = (  # phrase -> key
    (r"(?:moved|relocated)\s+to", "home"),
    (r"(?:live|am\s+living|'m\s+living|reside)\s+in", "home"),
    (r"(?:work|am\s+working|'m\s+working)\s+(?:at|for)", "employer"),
    (r"(?:started|began)\s+(?:working|a\s+(?:new\s+)?job)\s+(?:at|for)", "employer"),
    (r"(?:joined|got\s+a\s+(?:new\s+)?job\s+(?:at|with))", "employer"),
)
_I = r"(?<![A-Za-z])I(?:'ve|\s+have|\s+just|\s+recently|\s+finally|\s+still)*\s+"
_SET = [(re.compile(_I + verb + r"\s+" + _VALUE, re.IGNORECASE), key) for verb, key in _VERBS]
_NO_LONGER = [
    (re.compile(_I + r"(?:no\s+longer|don't|do\s+not)\s+" + verb + r"\s+" + _VALUE, re.I), key)
    for verb, key in _VERBS[1:3]
]
_MY = re.compile(
    r"(?<![A-Za-z])my\s+(?:new\s+|current\s+)?(?P<attr>[a-z][a-z ]{1,30}?)\s+(?:is|are)\s+(?:now\s+)?"
    + _VALUE,
    re.IGNORECASE,
)
_SWITCH = re.compile(
    _I + r"(?:switched|changed|moved|went)\s+from\s+(?P<old>[^.,;!?\n]{1,40}?)\s+to\s+" + _VALUE,
    re.IGNORECASE,
)
_VAGUE = {"it", "that", "this", "there", "here", "one", "the same", "not sure", "unknown"}
_NOT_KEYS = {"name is", "point", "question", "guess", "bad", "pleasure", "turn"}


def _clean(value: str) -> str | None:
    value = value.strip().strip("\"'").strip()
    if not value or value.lower() in _VAGUE or "[REDACTED_" in value:
        return None
    return value


def _key(words: str) -> str:
    return " ".join(words.lower().split())


class OfflineFactExtractor:
    """First-person English statements of the user: "my X is Y", "I moved to / live in Y",
    "I work at Y", "I no longer live in / work at Y", "I switched from A to B". Only the
    user's own messages count; the time of a fact is the time of its message."""

    def extract(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
        out: list[Statement] = []
        for message in messages:
            if message.role == "user":
                out.extend(self._statements(session_id, message))
        return out

    def _statements(self, session_id: str, message: Message) -> Iterator[Statement]:
        text, when = message.content, message.created_at
        found: list[tuple[int, Statement]] = []

        def add(
            pos: int, attribute: str, value: str | None, change: Change, old: str | None = None
        ) -> None:
            if value is not None:
                found.append(
                    (pos, Statement(attribute, value, change, when, session_id, message.id, old))
                )

        ended: set[int] = set()
        for pattern, key in _NO_LONGER:
            for m in pattern.finditer(text):
                add(m.start(), key, _clean(m.group("value")), "end")
                ended.add(m.start("value"))
        for pattern, key in _SET:
            for m in pattern.finditer(text):
                if m.start("value") not in ended:
                    add(m.start(), key, _clean(m.group("value")), "set")
        for m in _SWITCH.finditer(text):
            add(m.start(), "", _clean(m.group("value")), "switch", _clean(m.group("old")))
        for m in _MY.finditer(text):
            attribute = _key(m.group("attr"))
            if attribute not in _NOT_KEYS:
                add(m.start(), attribute, _clean(m.group("value")), "set")
        for _, statement in sorted(found, key=lambda item: item[0]):
            yield statement


# --- supersession (pure) ---------------------------------------------------------------------


def supersede(facts: Sequence[Fact], statements: Sequence[Statement], now: datetime) -> list[Fact]:
    """The facts after ``statements``, in order: a new value for a key closes the open fact of
    that key at the statement's time; the same value again changes nothing; ``end`` closes the
    fact; ``switch`` from A to B closes the open fact whose value is A (its key) and opens B."""
    out = list(facts)
    for s in statements:
        attribute = s.attribute
        if s.change == "switch":
            match = next(
                (
                    f
                    for f in out
                    if f.current and s.previous and f.value.lower() == s.previous.lower()
                ),
                None,
            )
            attribute = match.attribute if match is not None else f"choice ({s.previous or '?'})"
        open_index = next(
            (i for i, f in enumerate(out) if f.current and f.attribute == attribute), None
        )
        if open_index is not None:
            current = out[open_index]
            if s.change != "end" and current.value.lower() == s.value.lower():
                continue
            if s.change == "end" and current.value.lower() != s.value.lower():
                continue  # "I no longer live in Rome" while the fact says Berlin
            out[open_index] = replace(current, valid_to=max(s.said_at, current.valid_from))
        if s.change != "end":
            out.append(Fact(attribute, s.value, s.said_at, None, now, s.session_id, s.message_id))
    return out


def as_of(facts: Sequence[Fact], when: datetime) -> list[Fact]:
    """The facts that held at ``when``."""
    return [f for f in facts if f.valid_from <= when and (f.valid_to is None or when < f.valid_to)]


# --- the store-facing part -------------------------------------------------------------------


class FactBook:
    """The facts of one user in the session store's ``tm_facts`` table."""

    def __init__(
        self, engine: Engine, user_id: str, extractor: FactExtractor | None = None
    ) -> None:
        self.engine = engine
        self.user_id = user_id
        self.extractor: FactExtractor = extractor or OfflineFactExtractor()

    def observe(self, session_id: str, messages: Sequence[Message]) -> list[Fact]:
        """Extract the statements of ``messages`` and apply them; returns the changed facts."""
        statements = self.extractor.extract(session_id, messages)
        if not statements:
            return []
        for s in statements:
            if not isinstance(s, Statement) or not s.value.strip():
                raise InvalidMessageError(f"the fact extractor returned {s!r}, not a Statement")
        statements = sorted(statements, key=lambda s: s.said_at)
        now = datetime.now(timezone.utc)
        with self._write() as conn:
            before = self._facts(conn)
            after = supersede(before, statements, now)
            changed = [f for f in after if f not in before]
            next_id = max((f.fact_id for f in before), default=-1) + 1
            f_ = facts_table.c
            written = []
            for fact in changed:
                if fact.fact_id >= 0:
                    conn.execute(
                        sa.update(facts_table)
                        .where(f_.user_id == self.user_id, f_.fact_id == fact.fact_id)
                        .values(valid_to=_ts(fact.valid_to))
                    )
                    written.append(fact)
                else:
                    fact = replace(fact, fact_id=next_id)
                    next_id += 1
                    conn.execute(sa.insert(facts_table).values(**self._row(fact)))
                    written.append(fact)
        return written

    def facts(self) -> list[Fact]:
        """Every fact of the user, superseded ones included, in the order they were learned."""
        with self._read() as conn:
            return self._facts(conn)

    def current(self) -> list[Fact]:
        return [f for f in self.facts() if f.current]

    def as_of(self, when: datetime) -> list[Fact]:
        moment = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return as_of(self.facts(), moment)

    def forget_user(self) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(facts_table).where(facts_table.c.user_id == self.user_id))

    def _facts(self, conn: Connection) -> list[Fact]:
        f = facts_table.c
        rows = conn.execute(
            sa.select(facts_table).where(f.user_id == self.user_id).order_by(f.fact_id)
        ).all()
        return [
            Fact(
                r.attribute, r.value, _dt(r.valid_from), None if r.valid_to is None else _dt(r.valid_to),
                _dt(r.recorded_at), r.session_id, r.message_id, r.fact_id,
            )
            for r in rows
        ]  # fmt: skip

    def _row(self, fact: Fact) -> dict[str, object]:
        return {
            "user_id": self.user_id, "fact_id": fact.fact_id, "attribute": fact.attribute,
            "value": fact.value, "valid_from": fact.valid_from.timestamp(),
            "valid_to": _ts(fact.valid_to), "recorded_at": fact.recorded_at.timestamp(),
            "session_id": fact.session_id, "message_id": fact.message_id,
        }  # fmt: skip

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"fact store write failed: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(tm_read_only=True) as conn, conn.begin():
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"fact store read failed: {exc}") from exc


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


__all__ = [
    "Fact",
    "FactBook",
    "FactExtractor",
    "OfflineFactExtractor",
    "Statement",
    "as_of",
    "supersede",
]
