"""BM25 for Tier 3: the tokenizer, the scoring formula, and two pure data structures.

Recall's lexical search runs in the session store (``store.tier3``: a postings table written in
the same transaction as the documents), with the tokenizer and formula of this module.
:class:`SessionSlots` holds the few documents one recall ranks (its candidates and their session
neighbours); :class:`LexicalIndex` is the same in memory with BM25 over every document: the
reference the store's search is tested against, and a standalone index for small corpora.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


__all__ = [
    "K1",
    "MAX_TERM_CHARS",
    "STOPWORDS",
    "B",
    "IndexedDoc",
    "LexicalIndex",
    "SessionSlots",
    "average_length",
    "idf",
    "stem",
    "term_counts",
    "terms",
]
