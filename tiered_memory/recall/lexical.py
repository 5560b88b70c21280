"""BM25 over one user's Tier-3 documents, in memory.

Pure data structure: ``recall.index.LexicalCache`` builds it from the session store's documents
and keeps it current through the store's change log. It also knows each document's session and
position, so recall can look at the turns around a hit.
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
    return [stem(w) for w in words if w not in STOPWORDS]


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


class LexicalIndex:
    """Incremental BM25 (k1=1.2, b=0.75, the usual defaults) with session neighbours."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._lock = threading.RLock()
        self.docs: list[IndexedDoc | None] = []
        self._slot: dict[str, int] = {}
        self._lengths: list[int] = []
        self._postings: dict[str, tuple[list[int], list[int]]] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sessions: dict[str, list[tuple[int, int]]] = {}  # session -> sorted (seq, slot)
        self._alive: list[bool] = []
        self._created: list[float] = []
        self._session_of: list[str] = []
        self._total_length = 0
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
                counts: dict[str, int] = {}
                for term in terms(doc.text):
                    counts[term] = counts.get(term, 0) + 1
                length = sum(counts.values())
                self._lengths.append(length)
                self._alive.append(True)
                self._created.append(doc.created_ts)
                self._session_of.append(doc.session_id)
                self._total_length += length
                for term, tf in counts.items():
                    slots, tfs = self._postings.setdefault(term, ([], []))
                    slots.append(slot)
                    tfs.append(tf)
                    self._arrays.pop(term, None)
                bisect.insort(self._sessions.setdefault(doc.session_id, []), (doc.seq, slot))
                self._live += 1

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
        self._total_length -= self._lengths[slot]
        self._lengths[slot] = 0
        entries = self._sessions.get(doc.session_id, [])
        index = bisect.bisect_left(entries, (doc.seq, slot))
        if index < len(entries) and entries[index] == (doc.seq, slot):
            entries.pop(index)
        self._live -= 1
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
            average = self._total_length / self._live or 1.0
            for term in set(terms(query)):
                arrays = self._term_arrays(term)
                if arrays is None:
                    continue
                slots, tfs = arrays
                alive = alive_slots[slots]
                slots, tfs = slots[alive], tfs[alive]
                if not len(slots):
                    continue
                idf = math.log(1.0 + (self._live - len(slots) + 0.5) / (len(slots) + 0.5))
                norm = tfs + self.k1 * (1.0 - self.b + self.b * lengths[slots] / average)
                np.add.at(out, slots, idf * tfs * (self.k1 + 1.0) / norm)
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
        """The previous and next live documents of the same session."""
        doc = self.docs[slot]
        if doc is None:
            return None, None
        entries = self._sessions.get(doc.session_id, [])
        index = bisect.bisect_left(entries, (doc.seq, slot))
        before = entries[index - 1][1] if index > 0 else None
        after = entries[index + 1][1] if index + 1 < len(entries) else None
        return before, after


__all__ = ["STOPWORDS", "IndexedDoc", "LexicalIndex", "stem", "terms"]
