"""Facts that change: first-person statements as keyed facts with the time they held.

"I live in Paris" (May) and "I moved to Berlin" (October) become two facts of the key ``home``:
Paris, valid from May until October, and Berlin, valid since October. A new value for a key
closes the open fact (``valid_to``), never deletes it; "I no longer live in Berlin" closes it
without a successor. ``recorded_at`` is when the memory learned the fact.

Besides such keyed facts, the offline extractor keeps *said* facts: a first-person sentence
that states an event or a state ("I just finished my third marathon", "I have a pottery class on
Fridays"), dated and keyed by its content words, a short key for the turn it came from.

Pure part: the :class:`FactExtractor` protocol, :class:`OfflineFactExtractor` (English
first-person patterns) and :func:`supersede`. Store part: :class:`FactBook` (one user, the
session store's ``tm_facts`` table). Compaction calls :meth:`FactBook.observe_upto` after each
committed batch (``tiered_memory.recall.timeline`` makes the facts Tier-3 documents): one
extractor call per batch, exactly once per message thanks to a per-session watermark.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import ConfigError, InvalidMessageError, StoreError
from .messages import Message
from .store.schema import (
    fact_marks_table,
    fact_versions_table,
    facts_table,
    insert_ignore,
    messages_table,
)

logger = logging.getLogger("tiered_memory")

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

    @property
    def said(self) -> bool:
        """A dated first-person sentence (an event or a state in the user's words), not a
        keyed value: it serves as a short, dated key for the turn it came from."""
        return self.attribute.startswith((SAID_PREFIX, EVENT_PREFIX))

    def text(self) -> str:
        """One self-contained line: "User lives in Berlin (home, since 2026-10-02)"."""
        since = self.valid_from.strftime("%Y-%m-%d")
        if self.said:
            if self.valid_to is None:
                return f"{self.value} (said {since})"
            return f"{self.value} (said {since}, was true until {self.valid_to:%Y-%m-%d})"
        phrase = _PHRASES.get(self.attribute)
        if phrase is not None:
            said = f"User {phrase} {self.value} ({self.attribute}, "
        else:
            said = f"User's {self.attribute or 'choice'} is {self.value} ("
        if self.valid_to is None:
            return f"{said}since {since})"
        until = self.valid_to.strftime("%Y-%m-%d")
        return f"{said}from {since}, was true until {until})"


_PHRASES = {"home": "lives in", "employer": "works at"}


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
_TRAIL = r"\bthese\s+days\b|\bnowadays\b|\bby\s+far\b|\bas\s+an?\s|\bas\s+(?:my|our|the)\s|\btoo\b"
_END = rf"(?=\s*(?:[.,;!?]|\band\b|\bbut\b|\bsince\b|\bnow\b|{_WHEN}|{_TRAIL}|$))"
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


# A dated first-person sentence: what the user did, has, counts or keeps doing, in their words.
SAID_PREFIX = "said: "
"""Attribute prefix of a said state ("I own 12 board games", "six times now"); the rest is its topic
(the sentence's content words): the same topic said again later closes it."""
EVENT_PREFIX = "event: "
"""Attribute prefix of a said event ("I went to the gym yesterday"): an event said again is
another event, never a change, so it closes nothing and is never closed."""
MAX_SAID_CHARS = 300
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_FIRST_PERSON = re.compile(r"(?<![A-Za-z'])(?:I|[Mm]y|[Ww]e|[Oo]ur)(?![A-Za-z])")
_IRREGULAR = (
    "got|bought|began|made|took|went|saw|met|ran|wore|won|lost|left|found|gave|sold|read|"
    "wrote|did|had|came|became|spent|paid|built|caught|drove|flew|grew|heard|kept|knew|led|"
    "put|rode|sang|sat|set|slept|spoke|swam|taught|thought|told|tried|understood|woke|"
    "brought|chose|drew|ate|fell|felt|forgot|hit|held|hung|quit|shot|shut|stood|threw|"
    "done|gone|seen|taken|worn|given|written|ridden|eaten|begun|known|grown|flown|driven"
)
_ADVERBS = r"(?:just|recently|finally|already|also|actually|even|first|since|then|now|\w+ly)"
_EVENT = re.compile(  # I did / I've done / I had done, adverbs allowed between
    rf"(?<![A-Za-z'])(?:I|we|my(?:\s+[a-z'-]+){{1,2}})(?:'ve|'d|\s+have|\s+had)?"
    rf"(?:\s+{_ADVERBS})*\s+"
    rf"(?:(?!need|feed|seed|speed|bleed)[a-z]{{3,}}ed|{_IRREGULAR})(?![A-Za-z])",
    re.IGNORECASE,
)
_STATE = re.compile(  # I'm now/currently/still ..., I have/own N ..., my X is/are ..., counts
    r"(?<![A-Za-z'])(?:I'm|I\s+am|we're)\s+(?:now|currently|still|finally|officially)\b"
    r"|(?<![A-Za-z'])I\s+(?:have|own|keep|take|attend|go\s+to|usually|always|only)\b.*?"
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twice|once|every|each|"
    r"total|(?:mon|tues|wednes|thurs|fri|satur|sun)days?|weekends?)\b"
    r"|(?<![A-Za-z'])my\s+(?!point|guess|question|pleasure|turn)(?:[a-z'-]+\s+){0,3}"
    r"(?:is|are|was|were)\s+(?:now\s+)?\w"
    r"|\b(?:so\s+far|in\s+total|times\s+(?:now|already|so\s+far)|for\s+(?:about\s+|almost\s+"
    r"|over\s+)?(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|a\s+few|several)"
    r"\s+(?:days?|weeks?|months?|years?))\b",
    re.IGNORECASE,
)
_ASKING = re.compile(  # requests and questions to the assistant are not facts about the user
    r"\b(?:can|could|would|will)\s+you\b|\bplease\b|\bdo\s+you\b|\bhelp\s+me\b"
    r"|\bI(?:'m|\s+am|\s+was)\s+(?:looking\s+for|wondering|curious|hoping)\b"
    r"|\bI(?:'d|\s+would)\s+(?:like|love|appreciate)\b|\b(?:recommend|suggest)\s+(?:me|a|an|some)\b"
    r"|\bany\s+(?:tips|ideas|advice|suggestions|recommendations)\b",
    re.IGNORECASE,
)
_NUMBERISH = re.compile(
    r"^(?:\d+\w*|one|two|three|four|five|six|seven|eight|nine|ten|first|second|third|"
    r"fourth|fifth|sixth|twice|once|time|now|today|yesterday|week|month|year|day|ago|last|"
    r"recently|just|finally|already|far|total|tim)$"
)
_MIN_SAID_WORDS = 10  # a shorter sentence, or one that points back, takes the one before it
_POINTS_BACK = re.compile(r"\b(?:ones?|it|its|them|they|those|these|there|this)\b", re.I)
_MAX_CONTEXT_CHARS = 150


def said_sentences(text: str) -> Iterator[tuple[int, int, str, bool]]:
    """The (start, end, sentence, is_state) of each sentence of ``text`` that state something about the speaker: first
    person, an event ("I just bought", "I've finished") or a state ("I'm now", "I have 12",
    "my X is", "so far", "for six months"), and neither a question nor a request."""
    previous = ""
    for match in _SENTENCE.finditer(text):
        sentence = " ".join(match.group().split())
        if (
            sentence.endswith("?")
            or _FIRST_PERSON.search(sentence) is None
            or _ASKING.search(sentence) is not None
            or (_EVENT.search(sentence) is None and _STATE.search(sentence) is None)
            or "[REDACTED_" in sentence
        ):
            previous = sentence
            continue
        said = sentence
        if previous and (
            len(sentence.split()) < _MIN_SAID_WORDS or _POINTS_BACK.search(sentence) is not None
        ):
            context = previous[-_MAX_CONTEXT_CHARS:]
            said = f"{context if context == previous else '...' + context} {sentence}"
        state = _STATE.search(sentence) is not None
        yield match.start(), match.end(), said[:MAX_SAID_CHARS].rstrip(), state
        previous = sentence


def said_topic(sentence: str, *, event: bool = False) -> str:
    """The attribute of a said fact: its sorted content words, numbers and time words left
    out, so the same sentence with another count ("four times" / "six times") has one key."""
    prefix = EVENT_PREFIX if event else SAID_PREFIX
    from .recall.lexical import terms  # the recall index's own words and stems

    words = sorted({t for t in terms(sentence) if not _NUMBERISH.match(t) and len(t) > 2})
    return prefix + " ".join(words)[: MAX_ATTRIBUTE_CHARS - len(prefix)].strip()


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
    user's own messages count; the time of a fact is the time of its message.

    With ``sentences`` (the default) also every first-person sentence that states an event or
    a state (:func:`said_sentences`) as a *said* fact: the sentence itself, dated, keyed by its
    topic (:func:`said_topic`), a short key for its turn in recall and its date in the text.
    """

    def __init__(self, *, sentences: bool = True) -> None:
        self.sentences = sentences

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
        if self.sentences:  # a sentence that gave a keyed fact gives no said one
            speaker = message.name or "User"
            keyed = [pos for pos, _ in found]
            for pos, end, sentence, state in said_sentences(text):
                topic = said_topic(sentence, event=not state)
                bare = topic in (SAID_PREFIX, EVENT_PREFIX)
                if not bare and not any(pos <= k < end for k in keyed):
                    add(pos, topic, f"{speaker} said: {sentence}", "set")
        for _, statement in sorted(found, key=lambda item: item[0]):
            yield statement


# --- supersession (pure) ---------------------------------------------------------------------


def supersede(facts: Sequence[Fact], statements: Sequence[Statement], now: datetime) -> list[Fact]:
    """The facts after ``statements``, in order: a new value for a key closes the open fact of
    that key at the statement's time; the same value again changes nothing; ``end`` closes the
    fact; ``switch`` from A to B closes the open fact whose value is A (its key) and opens B; a
    said event (:data:`EVENT_PREFIX`) is added and closes nothing."""
    out = list(facts)
    for s in statements:
        attribute = s.attribute
        if attribute.startswith(EVENT_PREFIX):
            out.append(Fact(attribute, s.value, s.said_at, None, now, s.session_id, s.message_id))
            continue
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


MAX_PASS_MESSAGES = 1000  # read by one fact pass (one extractor call); the rest on the next
MAX_VALUE_CHARS = 500
MAX_ATTRIBUTE_CHARS = 200

marks_table = fact_marks_table  # created with the session store's other tables


class FactBook:
    """The facts of one user in the session store's ``tm_facts`` table."""

    def __init__(
        self, engine: Engine, user_id: str, extractor: FactExtractor | None = None
    ) -> None:
        if extractor is not None and not callable(getattr(extractor, "extract", None)):
            raise ConfigError(
                f"fact_extractor must have extract(session_id, messages), got {extractor!r}"
            )
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
        with self._write() as conn:
            return self._apply(conn, statements)

    def _apply(self, conn: Connection, statements: Sequence[Statement]) -> list[Fact]:
        if not statements:
            return []
        before = self._facts(conn)
        after = supersede(before, statements, datetime.now(timezone.utc))
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
            else:
                fact = replace(fact, fact_id=next_id)
                next_id += 1
                conn.execute(sa.insert(facts_table).values(**self._row(fact)))
            written.append(fact)
        if written:
            self._bump(conn)
        return written

    def observe_upto(
        self, session_id: str, upto: int, prepare: Callable[[Message, Message | None], Message]
    ) -> list[Fact]:
        """Extract and apply the facts of the session's messages below log position ``upto``
        not yet observed; returns the changed facts.

        Exactly once: a per-session watermark is read, the messages from it to ``upto`` go to
        the extractor in one call (outside any transaction: it may be a model), then the facts
        are written and the watermark advanced in one transaction, only if nobody advanced it
        meanwhile (a retried or raced compaction observes nothing twice).
        """
        mark = self._mark(session_id)
        if mark >= upto:
            return []
        items = self._messages(session_id, mark, upto)
        if not items:
            return self._advance(session_id, mark, upto, [])
        upto = min(upto, items[-1][0] + 1)  # a capped read: the rest on the next pass
        prepared: list[Message] = []
        previous: Message | None = None
        last_seq = -2
        for seq, message in items:
            prepared.append(prepare(message, previous if seq == last_seq + 1 else None))
            previous, last_seq = message, seq
        try:
            statements = self._statements(session_id, prepared)
        except InvalidMessageError as exc:  # a bad answer is skipped, never retried forever
            logger.warning("session %s: fact extractor answer refused (%s)", session_id, exc)
            statements = []
        return self._advance(session_id, mark, upto, statements)

    def _statements(self, session_id: str, messages: Sequence[Message]) -> list[Statement]:
        statements = self.extractor.extract(session_id, messages)
        if not isinstance(statements, list):
            raise InvalidMessageError(
                f"the fact extractor returned {type(statements).__name__}, not a list"
            )
        known = {m.id for m in messages}
        for s in statements:
            if not isinstance(s, Statement) or not isinstance(s.value, str) or not s.value.strip():
                raise InvalidMessageError(f"the fact extractor returned {s!r}, not a Statement")
            if s.message_id not in known or s.session_id != session_id:
                raise InvalidMessageError(
                    f"the fact extractor returned a statement of message {s.message_id!r}, "
                    "which is not in the batch"
                )
            if len(s.value) > MAX_VALUE_CHARS or len(s.attribute) > MAX_ATTRIBUTE_CHARS:
                raise InvalidMessageError("the fact extractor returned an over-long statement")
        return statements

    def _advance(
        self, session_id: str, mark: int, upto: int, statements: Sequence[Statement]
    ) -> list[Fact]:
        k = marks_table.c
        with self._write() as conn:
            conn.execute(
                insert_ignore(conn, marks_table).values(
                    user_id=self.user_id, session_id=session_id, upto=0
                )
            )
            moved = conn.execute(
                sa.update(marks_table)
                .where(k.user_id == self.user_id, k.session_id == session_id, k.upto == mark)
                .values(upto=upto)
            )
            if moved.rowcount != 1:
                return []  # another pass observed these messages (and wrote their facts)
            return self._apply(conn, sorted(statements, key=lambda s: s.said_at))

    def _mark(self, session_id: str) -> int:
        k = marks_table.c
        with self._read() as conn:
            value = conn.execute(
                sa.select(k.upto).where(k.user_id == self.user_id, k.session_id == session_id)
            ).scalar()
        return int(value or 0)

    def _messages(self, session_id: str, start: int, stop: int) -> list[tuple[int, Message]]:
        from .store.sessions import row_to_stored

        m = messages_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(messages_table)
                .where(
                    m.user_id == self.user_id, m.session_id == session_id,
                    m.seq >= start, m.seq < stop,
                )
                .order_by(m.seq)
                .limit(MAX_PASS_MESSAGES)
            ).all()  # fmt: skip
        return [(int(r.seq), row_to_stored(r).message) for r in rows]

    def forget_messages(self, removed: Sequence[tuple[str, str]]) -> list[int]:
        """Erase the facts derived from the ``(session_id, message_id)`` messages; returns their
        ids. A fact an erased one had closed holds again until the erased one's end."""
        if not removed:
            return []
        gone = set(removed)
        with self._write() as conn:
            facts = self._facts(conn)
            erased = [f for f in facts if (f.session_id, f.message_id) in gone]
            for fact in erased:
                self._erase(conn, fact, facts)
            return [f.fact_id for f in erased]

    def forget_session(self, session_id: str) -> list[int]:
        """Erase the facts of one session's messages and its watermark (``clear()``)."""
        with self._write() as conn:
            facts = self._facts(conn)
            erased = [f for f in facts if f.session_id == session_id]
            for fact in erased:
                self._erase(conn, fact, facts)
            k = marks_table.c
            conn.execute(
                sa.delete(marks_table).where(k.user_id == self.user_id, k.session_id == session_id)
            )
            return [f.fact_id for f in erased]

    def _erase(self, conn: Connection, fact: Fact, facts: Sequence[Fact]) -> None:
        self._bump(conn)
        f = facts_table.c
        conn.execute(
            sa.delete(facts_table).where(f.user_id == self.user_id, f.fact_id == fact.fact_id)
        )
        closed = [
            p for p in facts
            if p.attribute == fact.attribute and p.valid_to == fact.valid_from
            and p.fact_id != fact.fact_id
        ]  # fmt: skip
        for p in closed:
            conn.execute(
                sa.update(facts_table)
                .where(f.user_id == self.user_id, f.fact_id == p.fact_id)
                .values(valid_to=_ts(fact.valid_to))
            )

    def facts(self) -> list[Fact]:
        """Every fact of the user, superseded ones included, in the order they were learned.

        Read once per version: a process keeps the facts of the users it read lately and reads
        the user's fact version first, in the same transaction (every write bumps it)."""
        key = (self.engine.url.render_as_string(hide_password=True), self.user_id)
        with self._read() as conn:
            version = self._version(conn)
            cached = _CACHE.get(key, version)
            if cached is not None:
                return list(cached)
            facts = self._facts(conn)
        _CACHE.put(key, version, facts)
        return facts

    def current(self) -> list[Fact]:
        return [f for f in self.facts() if f.current]

    def as_of(self, when: datetime) -> list[Fact]:
        moment = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return as_of(self.facts(), moment)

    def forget_user(self) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(facts_table).where(facts_table.c.user_id == self.user_id))
            conn.execute(sa.delete(marks_table).where(marks_table.c.user_id == self.user_id))
            self._bump(conn)  # the version row stays: a version number is never reused

    def _version(self, conn: Connection) -> tuple[str, int]:
        v = fact_versions_table.c
        found = conn.execute(
            sa.select(v.epoch, v.version).where(v.user_id == self.user_id)
        ).one_or_none()
        return ("", 0) if found is None else (str(found.epoch), int(found.version))

    def _bump(self, conn: Connection) -> None:
        v = fact_versions_table.c
        conn.execute(
            insert_ignore(conn, fact_versions_table).values(
                user_id=self.user_id, version=0, epoch=uuid.uuid4().hex
            )
        )
        conn.execute(
            sa.update(fact_versions_table)
            .where(v.user_id == self.user_id)
            .values(version=v.version + 1)
        )

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


Version = tuple[str, int]  # (epoch, version) of a user's facts


class _FactCache:
    """The facts of the users read lately, by (database, user), each with the version it was
    read at; at most ``budget`` facts in all (the least recently used go first)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[tuple[str, str], tuple[Version, tuple[Fact, ...]]] = (
            OrderedDict()
        )
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], version: Version) -> tuple[Fact, ...] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[str, str], version: Version, facts: Sequence[Fact]) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._held -= len(old[1])
            if len(facts) > self.budget:
                return
            self._entries[key] = (version, tuple(facts))
            self._held += len(facts)
            while self._held > self.budget:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._held -= len(evicted)


_CACHE = _FactCache(budget=200_000)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


__all__ = [
    "EVENT_PREFIX",
    "SAID_PREFIX",
    "Fact",
    "FactBook",
    "FactExtractor",
    "OfflineFactExtractor",
    "Statement",
    "as_of",
    "marks_table",
    "said_sentences",
    "said_topic",
    "supersede",
]
