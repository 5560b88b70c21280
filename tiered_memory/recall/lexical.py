"""BM25 for Tier 3: the tokenizer, the scoring formula, and the pure data structures.

The session store is the truth: it keeps every Tier-3 document's postings, written in the same
transaction as the documents (``store.tier3``). :class:`Lexicon` is one user's postings and
document positions as of one store version: built from the store, extended by the documents
added since, rebuilt after any removal, and checked against the store's version on every recall
(``Tier3Tables.lexicon``), so it is a bounded cache, never a second truth. :class:`SessionSlots`
holds documents in slots with their session order; :class:`LexicalIndex` is BM25 in memory over
every document it holds: the reference the store's BM25 is tested against, and a standalone
index for small corpora.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_STOPWORD_TEXT = """
a an the and or but if of to in on at for with from by about as is are was were be been being
do does did done have has had having i you he she it we they me him her us them my your his its
our their mine yours hers ours theirs this that these those what which who whom whose when where
why how would could should will can may might shall must not no nor yes so than too very just
also there here then into out up down over again further once all any both each few more most
other some such only own same s t don now im ive id ill youre thats whats lets got get gets
really oh hey hi hello yeah wow ok okay
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "s", "ly")
MAX_TERM_CHARS = 64  # longer words are cut: an index key stays small on every database
K1 = 1.2
B = 0.75


def stem(word: str) -> str:
    """A light suffix stripper: enough to match plural/tense variants, never below 3 letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


def terms(text: str) -> list[str]:
    """Lowercased, stemmed content words of ``text`` (apostrophes folded: "I'm" -> "im")."""
    words = _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))
    return [stem(w)[:MAX_TERM_CHARS] for w in words if w not in STOPWORDS]


def term_counts(text: str) -> dict[str, int]:
    """Term frequencies of ``text``; their sum is the document's BM25 length."""
    counts: dict[str, int] = {}
    for term in terms(text):
        counts[term] = counts.get(term, 0) + 1
    return counts


def idf(documents: int, df: int) -> float:
    """BM25 inverse document frequency (the always-positive variant)."""
    return math.log(1.0 + (documents - df + 0.5) / (df + 0.5))


def average_length(documents: int, total_length: int) -> float:
    return total_length / documents if documents and total_length else 1.0


@dataclass(frozen=True)
class IndexedDoc:
    """One Tier-3 document as the recall ranking sees it."""

    key: str
    text: str
    metadata: Mapping[str, Any]

    @property
    def session_id(self) -> str:
        return str(self.metadata.get("session_id", ""))

    @property
    def seq(self) -> int:
        return int(self.metadata.get("seq", -1))

    @property
    def created_ts(self) -> float:
        return float(self.metadata.get("created_ts", 0.0))


class SessionSlots:
    """Documents in slots, with their session order: what the ranking needs besides scores.

    Adding a key again replaces its document; removed slots stay (dead), so slot numbers are
    stable for the arrays indexed by them.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.docs: list[IndexedDoc | None] = []
        self._slot: dict[str, int] = {}
        self._sessions: dict[str, list[tuple[int, int]]] = {}  # session -> sorted (seq, slot)
        self._alive: list[bool] = []
        self._created: list[float] = []
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def slot_of(self, key: str) -> int | None:
        return self._slot.get(key)

    def add(self, docs: Iterable[IndexedDoc]) -> None:
        """Add or replace documents (idempotent per key)."""
        with self._lock:
            for doc in docs:
                if doc.key in self._slot:
                    self._remove_slot(self._slot[doc.key])
                slot = len(self.docs)
                self.docs.append(doc)
                self._slot[doc.key] = slot
                self._alive.append(True)
                self._created.append(doc.created_ts)
                bisect.insort(self._sessions.setdefault(doc.session_id, []), (doc.seq, slot))
                self._live += 1
                self._added(slot, doc)

    def _added(self, slot: int, doc: IndexedDoc) -> None:
        """Hook for subclasses: ``doc`` now lives in ``slot``."""

    def remove(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                slot = self._slot.get(key)
                if slot is not None:
                    self._remove_slot(slot)

    def _remove_slot(self, slot: int) -> None:
        doc = self.docs[slot]
        if doc is None:
            return
        self.docs[slot] = None
        self._alive[slot] = False
        del self._slot[doc.key]
        entries = self._sessions.get(doc.session_id, [])
        index = bisect.bisect_left(entries, (doc.seq, slot))
        if index < len(entries) and entries[index] == (doc.seq, slot):
            entries.pop(index)
        self._live -= 1
        self._removed(slot)

    def _removed(self, slot: int) -> None:
        """Hook for subclasses: ``slot`` is dead."""

    def mask(
        self, session_id: str | None = None, since: float | None = None, until: float | None = None
    ) -> np.ndarray:
        """Which slots are live and pass the recall filters."""
        with self._lock:
            keep = np.asarray(self._alive, dtype=bool)
            if since is not None or until is not None:
                created = np.asarray(self._created, dtype=np.float64)
                if since is not None:
                    keep &= created >= since
                if until is not None:
                    keep &= created <= until
            if session_id is not None:
                slots = [slot for _, slot in self._sessions.get(session_id, [])]
                only = np.zeros(len(self.docs), dtype=bool)
                only[slots] = True
                keep &= only
            return keep

    def role(self, slot: int) -> str:
        doc = self.docs[slot]
        return str(doc.metadata.get("role", "")) if doc is not None else ""

    def session(self, slot: int) -> str:
        doc = self.docs[slot]
        return doc.session_id if doc is not None else ""

    def name(self, slot: int) -> str:
        doc = self.docs[slot]
        return str(doc.metadata.get("name") or "") if doc is not None else ""

    def neighbours(self, slot: int) -> tuple[int | None, int | None]:
        """The previous and next live documents of the same session (among those held)."""
        doc = self.docs[slot]
        if doc is None:
            return None, None
        entries = self._sessions.get(doc.session_id, [])
        index = bisect.bisect_left(entries, (doc.seq, slot))
        before = entries[index - 1][1] if index > 0 else None
        after = entries[index + 1][1] if index + 1 < len(entries) else None
        return before, after

    # --- the ranking's view (``ranking.Neighbourhood``), a slot at a time here ---------------

    def neighbour_slots(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.neighbours(int(slot)) for slot in slots]
        before = [-1 if b is None else b for b, _ in pairs]
        after = [-1 if a is None else a for _, a in pairs]
        return np.array(before, dtype=np.int64), np.array(after, dtype=np.int64)

    def session_codes(self, slots: np.ndarray) -> np.ndarray:
        codes: dict[str, int] = {}
        return np.array(
            [codes.setdefault(self.session(int(slot)), len(codes)) for slot in slots],
            dtype=np.int64,
        )

    def role_in(self, slots: np.ndarray, roles: Iterable[str]) -> np.ndarray:
        wanted = set(roles)
        return np.array([self.role(int(slot)) in wanted for slot in slots], dtype=bool)

    def written_by_other(self, slots: np.ndarray, author: str) -> np.ndarray:
        names = [self.name(int(slot)) for slot in slots]
        return np.array([name not in ("", author) for name in names], dtype=bool)


class LexicalIndex(SessionSlots):
    """Incremental in-memory BM25 (k1=1.2, b=0.75, the usual defaults) over every document held.

    The reference for the session store's BM25 (same tokenizer, same formula), and a standalone
    index for a corpus that fits in memory.
    """

    def __init__(self, k1: float = K1, b: float = B) -> None:
        super().__init__()
        self.k1 = k1
        self.b = b
        self._lengths: list[int] = []
        self._postings: dict[str, tuple[list[int], list[int]]] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._total_length = 0

    def _added(self, slot: int, doc: IndexedDoc) -> None:
        counts = term_counts(doc.text)
        length = sum(counts.values())
        self._lengths.append(length)
        self._total_length += length
        for term, tf in counts.items():
            slots, tfs = self._postings.setdefault(term, ([], []))
            slots.append(slot)
            tfs.append(tf)
            self._arrays.pop(term, None)

    def _removed(self, slot: int) -> None:
        self._total_length -= self._lengths[slot]
        self._lengths[slot] = 0
        # Postings keep the dead slot; scores() masks dead slots out.

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every slot for ``query`` (0 for dead slots and non-matching docs)."""
        with self._lock:
            size = len(self.docs)
            out = np.zeros(size, dtype=np.float64)
            if not self._live:
                return out
            lengths = np.asarray(self._lengths, dtype=np.float64)
            alive_slots = np.asarray(self._alive, dtype=bool)
            average = average_length(self._live, self._total_length)
            for term in set(terms(query)):
                arrays = self._term_arrays(term)
                if arrays is None:
                    continue
                slots, tfs = arrays
                alive = alive_slots[slots]
                slots, tfs = slots[alive], tfs[alive]
                if not len(slots):
                    continue
                weight = idf(self._live, len(slots))
                norm = tfs + self.k1 * (1.0 - self.b + self.b * lengths[slots] / average)
                np.add.at(out, slots, weight * tfs * (self.k1 + 1.0) / norm)
            return out

    def _term_arrays(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        arrays = self._arrays.get(term)
        if arrays is None:
            postings = self._postings.get(term)
            if postings is None:
                return None
            arrays = (
                np.asarray(postings[0], dtype=np.int64),
                np.asarray(postings[1], dtype=np.float64),
            )
            self._arrays[term] = arrays
        return arrays


#: (session_id, seq, doc_key, message_id, length, created_ts, role, generation, name) of a
#: document; name is "" when the message has none
DocumentRow = tuple[str, int, str, str, int, float, str, int, str]
#: (term, session_id, seq, tf) of one posting
PostingRow = tuple[str, str, int, int]


@dataclass(frozen=True)
class LexiconVersion:
    """Which state of a user's postings a :class:`Lexicon` holds: ``version`` counts every
    change, ``removed_at`` is the version of the last removal, ``epoch`` changes when the user's
    postings are made anew (a forgotten user who comes back)."""

    epoch: str
    version: int
    removed_at: int
    documents: int
    total_length: int


class Lexicon:
    """One user's Tier-3 documents as BM25 and the ranking see them: slots in the order the
    documents were added, their session neighbours, and the postings of the terms asked so far.

    The documents are fixed for its ``state``; a term's postings are loaded once, whole, in the
    snapshot of the state (``load_terms``), and kept for later queries. Extending a lexicon by
    documents added since carries the loaded terms over, completed by the new postings.
    """

    def __init__(
        self,
        state: LexiconVersion,
        parts: _Parts,
        terms: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        absent: set[str] | None = None,
    ) -> None:
        self.state = state
        self.keys = parts.keys
        self.message_ids = parts.message_ids
        self.slot_of = parts.slot_of
        self.sessions = parts.sessions
        self.session_index = parts.session_index
        self.seqs = parts.seqs
        self.created = parts.created
        self.lengths = parts.lengths
        self.roles = parts.roles
        self.role_index = parts.role_index
        self.names = parts.names
        self.name_index = parts.name_index
        self._parts = parts
        self._terms = terms or {}  # term -> (slots, tf), complete for this state
        self._absent = absent or set()  # terms known to be in no document
        self._term_bytes = sum(a.nbytes + b.nbytes + 120 for a, b in self._terms.values())
        self._lock = threading.Lock()
        self.before, self.after, order = _neighbours(self.session_index, self.seqs)
        self._order = order  # slots by (session, seq)
        self._sorted_positions = _position_keys(self.session_index, self.seqs)[order]

    @classmethod
    def build(cls, state: LexiconVersion, docs: Sequence[DocumentRow]) -> Lexicon:
        """From every document of the user (no postings yet: see ``load_terms``)."""
        return cls(state, _append(_EMPTY_PARTS, docs))

    def extended(
        self, state: LexiconVersion, docs: Sequence[DocumentRow], postings: Sequence[PostingRow]
    ) -> Lexicon:
        """This lexicon plus the documents added since (none removed: then it is built anew),
        with ``postings`` every posting of those documents."""
        parts = _append(self._parts, docs)
        extended = Lexicon(state, parts)
        with self._lock:
            terms = dict(self._terms)
            absent = set(self._absent)
        kept = [p for p in postings if p[0] in terms or p[0] in absent]
        grouped = _group(kept, extended._slots(*_columns(kept, 1, 2)))
        for term, (slots, tfs) in grouped.items():
            old = terms.get(term)
            terms[term] = (slots, tfs) if old is None else (
                np.concatenate([old[0], slots]), np.concatenate([old[1], tfs])
            )  # fmt: skip
            absent.discard(term)
        return Lexicon(state, parts, terms, absent)

    def _slots(self, sessions: Sequence[str], seqs: Sequence[int]) -> np.ndarray:
        """The slot of each ``(session, seq)``, -1 for a position it does not hold."""
        if not len(self.keys):
            return np.full(len(seqs), -1, dtype=np.int64)
        names, inverse = np.unique(np.asarray(sessions, dtype=object), return_inverse=True)
        at = {name: n for n, name in enumerate(self.sessions)}
        index_of = np.asarray([at.get(name, -1) for name in names.tolist()], dtype=np.int64)
        session_index = index_of[inverse.reshape(-1)]
        wanted = _position_keys(session_index, np.asarray(seqs, dtype=np.int64))
        index = np.searchsorted(self._sorted_positions, wanted)
        index = np.minimum(index, len(self._sorted_positions) - 1)
        found = (self._sorted_positions[index] == wanted) & (session_index >= 0)
        return np.where(found, self._order[index], -1)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        """Roughly what it holds in memory (arrays, key strings, the loaded postings)."""
        arrays = sum(a.nbytes for a in (self.session_index, self.seqs, self.created, self.lengths,
                                         self.role_index, self.name_index, self.before,
                                         self.after))  # fmt: skip
        return arrays + self._term_bytes + 300 * len(self.keys)

    def missing(self, query_terms: Iterable[str]) -> list[str]:
        """The terms whose postings are not loaded yet."""
        with self._lock:
            return sorted(
                {t for t in query_terms if t not in self._terms and t not in self._absent}
            )

    def load_terms(self, wanted: Sequence[str], postings: Sequence[PostingRow]) -> None:
        """Keep ``postings``: every posting of the ``wanted`` terms, read in this state."""
        grouped = _group(postings, self._slots(*_columns(postings, 1, 2)))
        with self._lock:
            for term in wanted:
                found = grouped.get(term)
                if found is None:
                    self._absent.add(term)
                elif term not in self._terms:
                    self._terms[term] = found
                    self._term_bytes += found[0].nbytes + found[1].nbytes + 120

    def scores(self, query_terms: Iterable[str]) -> np.ndarray:
        """BM25 of every slot (k1=1.2, b=0.75; the idf over this user's documents). Terms whose
        postings were not loaded count as absent."""
        out = np.zeros(len(self.keys), dtype=np.float64)
        total = len(self.keys)
        if not total:
            return out
        average = average_length(total, self.state.total_length)
        with self._lock:
            found = [self._terms[t] for t in set(query_terms) if t in self._terms]
        for slots, tfs in found:
            norm = tfs + K1 * (1.0 - B + B * self.lengths[slots] / average)
            out[slots] += idf(total, len(slots)) * tfs * (K1 + 1.0) / norm
        return out

    def mask(
        self, session_id: str | None = None, since: float | None = None, until: float | None = None
    ) -> np.ndarray:
        """Which slots pass the recall filters."""
        keep = np.ones(len(self.keys), dtype=bool)
        if since is not None:
            keep &= self.created >= since
        if until is not None:
            keep &= self.created <= until
        if session_id is not None:
            try:
                keep &= self.session_index == self.sessions.index(session_id)
            except ValueError:
                keep[:] = False
        return keep

    def neighbours(self, slot: int) -> tuple[int | None, int | None]:
        before, after = int(self.before[slot]), int(self.after[slot])
        return (before if before >= 0 else None), (after if after >= 0 else None)

    def neighbour_slots(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.before[slots].astype(np.int64), self.after[slots].astype(np.int64)

    def session_codes(self, slots: np.ndarray) -> np.ndarray:
        return self.session_index[slots]

    def role_in(self, slots: np.ndarray, roles: Iterable[str]) -> np.ndarray:
        codes = [n for n, role in enumerate(self.roles) if role in set(roles)]
        return np.isin(self.role_index[slots], codes)

    def written_by_other(self, slots: np.ndarray, author: str) -> np.ndarray:
        others = [n for n, name in enumerate(self.names) if name not in ("", author)]
        return np.isin(self.name_index[slots], others)

    def role(self, slot: int) -> str:
        return self.roles[int(self.role_index[slot])]

    def session(self, slot: int) -> str:
        return self.sessions[int(self.session_index[slot])]

    def name(self, slot: int) -> str:
        return self.names[int(self.name_index[slot])]

    def seq(self, slot: int) -> int:
        return int(self.seqs[slot])


@dataclass(frozen=True)
class _Parts:
    """A lexicon's documents (appended to, never changed)."""

    keys: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()
    slot_of: Mapping[str, int] = field(default_factory=dict)
    sessions: tuple[str, ...] = ()
    session_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    seqs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    created: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    roles: tuple[str, ...] = ()
    role_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    names: tuple[str, ...] = ()
    name_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))


_EMPTY_PARTS = _Parts()


def _append(base: _Parts, docs: Sequence[DocumentRow]) -> _Parts:
    start = len(base.keys)
    slot_of = dict(base.slot_of)
    sessions, roles, names = list(base.sessions), list(base.roles), list(base.names)
    session_at = {s: n for n, s in enumerate(sessions)}
    role_at = {r: n for n, r in enumerate(roles)}
    name_at = {r: n for n, r in enumerate(names)}
    new_sessions, new_roles, new_names = [], [], []
    for n, (session_id, _seq, key, _message, _length, _created, role, _gen, name) in enumerate(
        docs
    ):
        slot_of[key] = start + n
        if session_id not in session_at:
            session_at[session_id] = len(sessions)
            sessions.append(session_id)
        if role not in role_at:
            role_at[role] = len(roles)
            roles.append(role)
        if name not in name_at:
            name_at[name] = len(names)
            names.append(name)
        new_sessions.append(session_at[session_id])
        new_roles.append(role_at[role])
        new_names.append(name_at[name])

    def column(old: np.ndarray, values: list[Any], dtype: Any) -> np.ndarray:
        return np.concatenate([old, np.asarray(values, dtype=dtype)]).astype(dtype)

    return _Parts(
        keys=base.keys + tuple(d[2] for d in docs),
        message_ids=base.message_ids + tuple(d[3] for d in docs),
        slot_of=slot_of,
        sessions=tuple(sessions),
        session_index=column(base.session_index, new_sessions, np.int32),
        seqs=column(base.seqs, [d[1] for d in docs], np.int64),
        created=column(base.created, [d[5] for d in docs], np.float64),
        lengths=column(base.lengths, [d[4] for d in docs], np.float64),
        roles=tuple(roles),
        role_index=column(base.role_index, new_roles, np.int16),
        names=tuple(names),
        name_index=column(base.name_index, new_names, np.int32),
    )


def _columns(rows: Sequence[tuple[Any, ...]], *at: int) -> list[tuple[Any, ...]]:
    """The columns ``at`` of ``rows`` (empty tuples for no rows)."""
    if not rows:
        return [() for _ in at]
    columns = list(zip(*rows, strict=True))
    return [columns[n] for n in at]


def _group(
    postings: Sequence[PostingRow], slots: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Postings by term as (slots, tf) arrays, given each posting's slot; postings of unknown
    documents (slot -1, which one snapshot never holds) are ignored."""
    if not postings:
        return {}
    term_column, tf_column = _columns(postings, 0, 3)
    known = slots >= 0
    names, inverse = np.unique(np.asarray(term_column, dtype=object), return_inverse=True)
    inverse = inverse.reshape(-1)[known]
    kept_slots = slots[known].astype(np.int32)
    tfs = np.asarray(tf_column, dtype=np.float64)[known]
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(names)))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    start = 0
    for name, stop in zip(names.tolist(), bounds.tolist(), strict=True):
        if stop > start:
            picked = order[start:stop]
            out[name] = (kept_slots[picked], tfs[picked])
        start = stop
    return out


def _position_keys(sessions: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    return sessions.astype(np.int64) * (1 << 32) + (seqs.astype(np.int64) & 0xFFFFFFFF)


def _neighbours(
    session_index: np.ndarray, seqs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each slot's previous and next slot in its session (by seq), -1 at a session's ends; and
    the slots in (session, seq) order."""
    size = len(seqs)
    before = np.full(size, -1, dtype=np.int32)
    after = np.full(size, -1, dtype=np.int32)
    order = np.lexsort((seqs, session_index)) if size else np.zeros(0, dtype=np.int64)
    if size < 2:
        return before, after, order
    same = session_index[order[1:]] == session_index[order[:-1]]
    before[order[1:][same]] = order[:-1][same]
    after[order[:-1][same]] = order[1:][same]
    return before, after, order


__all__ = [
    "K1",
    "MAX_TERM_CHARS",
    "STOPWORDS",
    "B",
    "DocumentRow",
    "IndexedDoc",
    "LexicalIndex",
    "Lexicon",
    "LexiconVersion",
    "PostingRow",
    "SessionSlots",
    "average_length",
    "idf",
    "stem",
    "term_counts",
    "terms",
]
