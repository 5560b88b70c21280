"""The offline default summarizer: deterministic, no model, no key.

It writes notes, not copies: each message is cut into clauses, small talk and filler are dropped,
first-person sentences become compact third-person notes ("I prefer short answers" -> "prefers
short answers"), and the kept clauses are grouped per speaker, one line each::

    User: named Kha; learning AI engineering; prefers short answers with code examples
    Assistant: split notes by heading, then into ~300-token chunks with 50-token overlap

A later call parses that text back and merges the new clauses into it (a clause that repeats or
updates an earlier one replaces it), so the summary is extended, never appended to.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..tokens import TokenCounter, token_counter
from .protocol import SummaryRequest

_SENTENCE_SPLIT = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+|\n+")
_NUMBER = re.compile(r"\d")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|monday|tuesday|wednesday|thursday|friday|"
    "saturday|sunday|today|tomorrow|yesterday|tonight|next week|last week|next month|last month|"
    "next year|last year"
)
_DATE = re.compile(rf"\b({_MONTHS})\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|my|mine|me|we|our)\b", re.IGNORECASE)
_PREFERENCE = re.compile(
    r"\b(like|love|prefer|hate|dislike|enjoy|favou?rite|want|wish|need|allergic|can't stand)\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(decided?|decision|will|going to|plan(?:ning)?|chose|choose|agreed?|let's|must|should|"
    r"deadline|remember|promise|booked|scheduled|switch(?:ed)? to|use)\b",
    re.IGNORECASE,
)
_IDENTITY = re.compile(
    r"\b(name is|call me|i am|i'm a|i work|live in|born|years old|my (?:wife|husband|son|daughter|"
    r"partner|friend|dog|cat|job|team|company|project))\b",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"^(hi|hello|hey|thanks|thank you|ok|okay|sure|great|cool|nice|wow|bye|good ?bye|yes|no)\b[!.,\s]*$",
    re.IGNORECASE,
)
_PROPER_NOUN = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+")


def fact_score(sentence: str) -> float:
    """How likely a sentence carries a fact worth keeping (0 = small talk)."""
    text = sentence.strip()
    if len(text) < 4 or _FILLER.match(text):
        return 0.0
    score = 0.0
    if _IDENTITY.search(text):
        score += 3.0
    if _NUMBER.search(text):
        score += 1.5
    if _DATE.search(text):
        score += 1.5
    if _PREFERENCE.search(text):
        score += 1.5
    if _DECISION.search(text):
        score += 1.0
    if _FIRST_PERSON.search(text):
        score += 1.0
    score += min(len(_PROPER_NOUN.findall(text)), 3) * 0.75
    if text.endswith("?"):
        score *= 0.5  # a question states less than an answer
    return score


_QUANTITY = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|dozen|once|twice|few times|half)\b",
    re.IGNORECASE,
)
_PAST = (
    r"\w+ed|got|went|made|saw|took|came|bought|found|gave|met|ran|won|wrote|began|built|drove|ate|"
    r"finished|had|did|became|flew|read|sold|left|lost|spent|sent|taught|wore|kept|grew|held|"
    r"brought|caught|chose|heard|paid|sang|swam|rode|threw|woke|began|took up|picked up"
)
_EVENT = re.compile(
    rf"\b(?:i|we)\s+(?:\w+ly\s+|just\s+|also\s+|finally\s+|even\s+)?(?:{_PAST})\b"
    r"|\b(?:i'?ve|i have|we'?ve|we have) (?:been|got|just|already|\w+ed)\b"
    r"|\b(?:i'?m|i am|we'?re|we are) (?:\w+ing|into|a fan|passionate|part of)\b",
    re.IGNORECASE,
)
_INTEREST = re.compile(
    r"\b(?:passionate|fave|fan of|obsessed|hobby|hobbies|dream|goal|career|favou?rite|allergy)\b",
    re.IGNORECASE,
)


_OWN_SUBJECT = re.compile(r"^\W*(?:my|our)\s+\w+", re.IGNORECASE)


def selection_score(sentence: str) -> float:
    """:func:`fact_score` plus what a personal fact sounds like: an event the speaker took part in
    ("I started surfing"), a quantity in words ("four months"), an interest or goal, the
    speaker's own things as the subject ("My spare key hides under the pot")."""
    score = fact_score(sentence)
    if score == 0.0:
        return 0.0
    bonus = 0.0
    if _EVENT.search(sentence):
        bonus += 1.0
    if not _NUMBER.search(sentence) and _QUANTITY.search(sentence):
        bonus += 1.0
    if _INTEREST.search(sentence):
        bonus += 1.0
    if _OWN_SUBJECT.match(sentence):
        bonus += 1.0  # "My spare key is under the pot": a fact about the speaker's own things
    if sentence.rstrip().endswith("?"):
        bonus *= 0.5
    return score + bonus


# --- turning a sentence into compact clauses ------------------------------------------------

_MARKDOWN = re.compile(r"\*\*|__|`|^#+\s*|^\s*(?:[-*\u2022>]|\d{1,2}[.)])\s+", re.MULTILINE)
_PLEASANTRY = re.compile(
    r"^(?:thanks|thank you|thx|you'?re welcome|nice to (?:meet|hear|see)|pleased to meet|"
    r"(?:i'?m |so )?glad|happy to help|i'?d be (?:happy|glad)|i hope|hope (?:this|that|you|it)|"
    r"let me know|feel free|good luck|have a (?:great|nice|good)|great question|"
    r"sounds (?:good|great|fun|amazing|awesome)|no problem|no worries|sure thing|cheers|"
    r"congrat\w*|haha\w*|lol|aw+|that'?s (?:great|awesome|amazing|so cool|wonderful|cool)|"
    r"(?:how|what) about you|how are you|you too|take care|see you|bye|good ?bye|"
    r"i'?m sorry to hear|sorry to hear|wow|oh wow|omg)\b",
    re.IGNORECASE,
)
_LEADING_FILLER = re.compile(
    r"^(?:hi|hello|hey|yes|yeah|yep|no|nope|ok|okay|so|well|oh|ah|also|and|but|actually|anyway|"
    r"by the way|btw|um+|hmm+|great|cool|awesome|sure|of course|absolutely|certainly|got it|"
    r"noted|right|honestly|basically|alright|i think|i guess|i mean|i believe|"
    r"i feel like|you know|please|plus|then)\b[\s,!.:\u2014-]*",
    re.IGNORECASE,
)
_FILLER_WORDS = re.compile(
    r"\b(?:please|really|very|actually|basically|literally|totally|honestly|definitely|truly|"
    r"super|so much|kind of|sort of|you know|i think|i guess|i mean|i believe|a lot of|a lot|quite|"
    r"just)\b,?\s*",
    re.IGNORECASE,
)
_ARTICLES = re.compile(r"\b(?:the|a|an)\s+")
_CLAUSE_SPLIT = re.compile(
    r",\s+(?:and|but|so|because|since|which|although|though|while|as|where)\s+"
    r"|\s+(?:but|because|although|though)\s+|\s+[\u2014\u2013]\s+|\s+-\s+|\s*;\s*"
    r"|,?\s+and\s+(?=(?i:i|i'm|i've|i'll|my)\b)"
)
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"^(?:let'?s|let us)\s+", ""),
        (r"^my name(?:'s| is)\s+", "named "),
        (r"^(?:call me)\s+", "named "),
        (r"^(?:i'?m|i am|im) going to\s+", "will "),
        (r"^(?:i'?m|i am|im)\s+", ""),
        (r"^(?:i'?ve|i have) got\s+", "has "),
        (r"^(?:i'?ve|i have)\s+", "has "),
        (r"^(?:i'?d|i would) (?:like|love) to\s+", "wants to "),
        (r"^(?:i'?d|i would)\s+", "would "),
        (r"^(?:i'?ll|i will)\s+", "will "),
        (r"^i (?:do not|don'?t)\s+", "doesn't "),
        (r"^i (?:did not|didn'?t)\s+", "didn't "),
        (r"^i (?:can not|cannot|can'?t)\s+", "can't "),
        (r"^i (?:was|wanna)\s+", "was "),
        (r"^we\s+", "we "),
        (r"^my\s+", ""),  # "my stack is X" -> "stack is X"; "from my aunt" keeps whose aunt
    )
)
_MODALS = frozenset(
    [
        "can",
        "could",
        "will",
        "would",
        "should",
        "must",
        "might",
        "may",
        "shall",
        "was",
        "were",
        "had",
        "did",
        "got",
        "also",
        "still",
        "recently",
        "finally",
        "usually",
        "always",
        "never",
        "often",
        "already",
        "even",
        "only",
        "just",
    ]
)
_IRREGULAR_PAST = frozenset(
    [
        "went",
        "got",
        "had",
        "made",
        "saw",
        "took",
        "came",
        "bought",
        "found",
        "gave",
        "told",
        "felt",
        "left",
        "met",
        "ran",
        "read",
        "said",
        "sent",
        "spent",
        "thought",
        "won",
        "wrote",
        "began",
        "brought",
        "built",
        "caught",
        "chose",
        "drove",
        "ate",
        "fell",
        "forgot",
        "grew",
        "heard",
        "held",
        "kept",
        "knew",
        "lost",
        "paid",
        "put",
        "set",
        "sat",
        "slept",
        "sold",
        "spoke",
        "stood",
        "taught",
        "understood",
        "woke",
        "wore",
        "did",
        "became",
        "flew",
        "drew",
        "swam",
        "sang",
        "rode",
        "broke",
        "hung",
        "led",
        "lent",
        "meant",
        "sang",
        "shot",
        "shut",
        "threw",
    ]
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_WORD = re.compile(r"[a-z0-9][a-z0-9'+#.-]*[a-z0-9+#]|[a-z0-9]")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "will",
        "would",
        "can",
        "could",
        "should",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "him",
        "her",
        "his",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "how",
        "when",
        "where",
        "why",
        "not",
        "no",
        "yes",
        "very",
        "really",
        "just",
        "also",
        "then",
        "than",
        "too",
        "some",
        "any",
        "all",
        "more",
        "most",
        "much",
        "many",
        "lot",
        "named",
        "wants",
        "want",
        "get",
        "got",
        "like",
    ]
)
_ROLE_WORDS = frozenset({"system", "developer", "assistant", "user", "tool", "instruction"})
_CLAUSE_SEPARATOR = "; "


def _conjugate(verb: str) -> str:
    """Third person singular of a present-tense verb (``prefer`` -> ``prefers``)."""
    lower = verb.casefold()
    if lower in _MODALS or lower in _IRREGULAR_PAST or lower.endswith(("ed", "ly", "s", "'")):
        return verb
    if lower in ("have", "do", "go"):
        return {"have": "has", "do": "does", "go": "goes"}[lower]
    if lower.endswith(("sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(lower) > 2 and lower.endswith("y") and lower[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _third_person(clause: str) -> str:
    """``I prefer X`` -> ``prefers X``; ``I also love Y`` -> ``also loves Y``."""
    match = re.match(r"^i\s+((?:[a-z]+ly\s+|also\s+|still\s+|now\s+)*)([a-z]+)\b", clause, re.I)
    if not match:
        return clause
    return f"{match.group(1)}{_conjugate(match.group(2))}{clause[match.end() :]}"


def clean_text(text: str) -> str:
    """Text made safe to sit inside one summary clause: no control characters, newlines, markup
    or separators that could start a new line, a new clause or break out of a prompt tag."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    text = text.replace("<", "(").replace(">", ")").replace(";", ",")
    return " ".join(text.split())


def _strip_leading(pattern: re.Pattern[str], text: str) -> str:
    while True:
        stripped = pattern.sub("", text, count=1).lstrip(" ,.:!-")
        if stripped == text:
            return text
        text = stripped


_LEADING_WHEN = re.compile(
    r"^((?:last|this|next|on|in|at|since|after|before|yesterday|today|tonight|recently|earlier|"
    r"lately|now|then|once|two|three|a few|few|over)\b[^,]{0,40}?),?\s+(?=(?:i|i'm|i've|i'll|my)\b)",
    re.IGNORECASE,
)
_VERDICT = re.compile(
    r"^(?:(?:very |really |so )?(?:solid|good|great|nice|perfect|excellent|smart|fair|interesting|"
    r"noted|got it|understood|right|exactly|correct|ok|okay|sure|sounds good)(?: \w+)?|"
    r"good (?:call|choice|question|idea)s?)\s*[:!]\s+",
    re.IGNORECASE,
)
_EVALUATION = re.compile(
    r"^(?:it|that|this|which|they|everyone|everything)(?:'s| is| was| has been| had been| were| "
    r"felt| feels| made| sounds| looks)\b",
    re.IGNORECASE,
)


# "(turn 3)", "[laughs]": a short aside, not a fact
_ASIDE = re.compile(r"^[(\[]\s*(?:[^\s()\[\]]+\s*){1,3}[)\]]$")


def _rewrite(part: str) -> str:
    when = ""
    match = _LEADING_WHEN.match(part)
    if match:
        when, part = match.group(1), part[match.end() :]
    part = _FILLER_WORDS.sub("", part)
    for pattern, replacement in _REWRITES:
        part = pattern.sub(replacement, part)
    part = _third_person(part)
    if when:
        part = f"{part.rstrip(' ,.!')} {when[0].lower() + when[1:]}"
    part = _ARTICLES.sub("", part)
    part = re.sub(r"^(?:system|developer|assistant|user|tool)\s*:\s*", "", part, flags=re.I)
    return " ".join(part.split()).strip(" ,.:!-")


def compress_sentence(sentence: str, min_part_score: float = 0.0) -> list[str]:
    """The compact clauses of one sentence; empty for small talk.

    A sentence with several clauses keeps those scoring at least ``min_part_score`` (by
    :func:`selection_score`) and drops bare evaluations ("it was so much fun").
    """
    text = _strip_leading(_LEADING_FILLER, clean_text(_MARKDOWN.sub("", sentence)))
    text = _VERDICT.sub("", text, count=1)
    if not text or _PLEASANTRY.match(text):
        return []
    parts = [p.strip(" ,.:!-") for p in _CLAUSE_SPLIT.split(text)]
    parts = [_strip_leading(_LEADING_FILLER, p) for p in parts if p and not _ASIDE.match(p)]
    clauses: list[str] = []
    for part in parts:
        if not part or _PLEASANTRY.match(part):
            continue
        if len(parts) > 1:
            if (
                _EVALUATION.match(part)
                and len(part.split()) <= 8
                and not _NUMBER.search(part)
                and not _QUANTITY.search(part)  # "that's six times now": a count, not a verdict
            ):
                continue
            if selection_score(part) < min_part_score:
                continue
        part = _rewrite(part)
        if len(_content_words(part)) >= 1 and len(part.split()) >= 2:
            clauses.append(part)
    return clauses


def _content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.casefold()) if w not in _STOPWORDS)


# A note that starts with a verb had the speaker as its subject ("I walked down the aisle" ->
# "walked down aisle"): scored as the first-person sentence it was, or the rewrite would cost the
# speaker's own events and preferences the very signals that selected them.
_SPEAKER_VERB = re.compile(
    r"^(?:\w+ly\s+|also\s+|still\s+|now\s+|just\s+|even\s+|finally\s+|already\s+)*"
    r"(?!(?:this|is|its|was|his|us|as|thus|plus|yes|less|unless|always|perhaps|sometimes|"
    r"besides|towards|news|series|species|thanks|bus|gas|ss)\b)"
    rf"(?:{_PAST}|has|have|will|would|could|can|should|might|must|was|can't|doesn't|didn't|"
    r"wants|named|[a-z]+s)\b"
)


_REQUEST = re.compile(
    r"^(?:can|could|would|will) you\b|^(?:write|modify|give|make|create|explain|tell|list|"
    r"summari[sz]e|rewrite|rephrase|translate|generate|provide|help|suggest|describe|show|find|"
    r"compare|calculate|recommend|add|remove|change|fix|convert|draft|edit|expand|continue|act|"
    r"imagine|pretend|design|develop|outline|compose|answer|analy[sz]e|identify|include|"
    r"elaborate|simplify|shorten|format|proofread|paraphrase|check|review|let me know)\b",
    re.IGNORECASE,
)
_ADDRESSEE = re.compile(r"\b(?:you|your|you're|you've|you'll|yours)\b", re.IGNORECASE)
_RECOMMENDATION = re.compile(
    r"\b(?:recommend\w*|suggest\w*|try|consider|opt for|go with|best|ideal|popular|known for)\b",
    re.IGNORECASE,
)


def _assistant_score(clause: str) -> float:
    """What an assistant's note is worth: the concrete things it named (places, products,
    numbers, dates), most of all in a recommendation; its own "I" is no fact about anyone."""
    text = clause.strip()
    if len(text) < 4 or _FILLER.match(text):
        return 0.0
    score = 0.0
    if _NUMBER.search(text):
        score += 1.5
    if _DATE.search(text):
        score += 1.5
    score += min(len(_PROPER_NOUN.findall(text)), 3) * 0.75
    if score and _RECOMMENDATION.search(text):
        score += 1.0
    if text.endswith("?"):
        score *= 0.5
    return score


def clause_score(clause: str, speaker: str = "user") -> float:
    """How much a compact clause is worth keeping under a tight budget (0 = nothing).

    ``speaker="assistant"`` scores an assistant's note (:func:`_assistant_score`). A person's
    request to the assistant ("write me a poem") or a note about the other party ("you said")
    is worth less than a fact about the speaker."""
    if speaker == "assistant":
        return _assistant_score(clause)
    score = selection_score(f"I {clause}" if _SPEAKER_VERB.match(clause) else clause)
    if re.match(r"^(?:named|prefers|likes|loves|hates|wants|needs|has|will|works|lives)\b", clause):
        score += 1.0  # what the speaker said about themselves
    if _REQUEST.match(clause):
        score *= 0.5
    elif _ADDRESSEE.search(clause):
        score *= 0.7
    return score


_CLAUSE_TOKENS = 16  # a typical note's length: its worth is its score


def _worth_per_token(clause: _Clause) -> float:
    """A note's score for the budget: per token of the budget it takes, damped (square root) so a
    rich note still outranks a bare one. Two short facts in the room of one long clause keep
    more of what was said; long clauses are most often cut prose."""
    return clause.score * (_CLAUSE_TOKENS / max(clause.tokens, 4)) ** 0.5


@dataclass
class _Clause:
    text: str
    words: frozenset[str]
    score: float  # clause_score: what the budget keeps
    tokens: int
    age: float  # larger = newer


def _speaker(label: str) -> str:
    """How a line's notes are scored: an assistant's, or a person's."""
    return "assistant" if label == "Assistant" else "user"


def _label(name: str | None, role: str) -> str:
    """A speaker label that cannot pose as another role or break the ``Label: notes`` line."""
    default = role.capitalize()
    if not name:
        return default
    label = re.sub(r"[^\w .'-]", "", clean_text(name))[:32].strip(" .-")
    if not label or (label.casefold() in _ROLE_WORDS and label.casefold() != role):
        return default
    return label


class _Notes:
    """The clauses of a summary per speaker, with a word index to find repeats quickly."""

    def __init__(self) -> None:
        self.speakers: dict[str, dict[int, _Clause]] = {}
        self._owner: dict[int, str] = {}
        self._postings: dict[str, set[int]] = {}
        self._next = 0

    def add(self, label: str, clause: _Clause) -> None:
        key = self._next
        self._next += 1
        self.speakers.setdefault(label, {})[key] = clause
        self._owner[key] = label
        for word in clause.words:
            self._postings.setdefault(word, set()).add(key)

    def remove(self, key: int) -> None:
        clause = self.speakers[self._owner.pop(key)].pop(key)
        for word in clause.words:
            self._postings[word].discard(key)

    def merge(self, label: str, new: _Clause) -> None:
        """Add ``new``, unless it repeats a note; a restated or updated note of the same speaker is
        replaced by it, an echo of another speaker's note is dropped."""
        if not new.words:
            return
        shared: dict[int, int] = {}
        for word in new.words:
            for key in self._postings.get(word, ()):
                shared[key] = shared.get(key, 0) + 1
        for key, count in sorted(shared.items(), key=lambda item: (-item[1], item[0])):
            if count < 0.375 * len(new.words):
                break
            owner = self._owner[key]
            old = self.speakers[owner][key]
            overlap = count / len(new.words | old.words)
            if count == len(new.words) and len(old.words) > count:
                return  # an earlier note already says it
            if overlap >= 0.6:
                if owner != label:
                    return  # the other speaker repeating it back
                self.remove(key)  # the same statement again, or an update of it
                break
        self.add(label, new)

    def clauses(self) -> list[_Clause]:
        return [clause for notes in self.speakers.values() for clause in notes.values()]


class ExtractiveSummarizer:
    """Deterministic, offline summarizer that writes compact per-speaker notes.

    Args:
        model: the model whose tokenizer counts the budget.
        min_score: the :func:`selection_score` a sentence needs to be kept (small talk scores 0;
            the user's sentences count 1.25x).
        max_clause_tokens: the longest clause kept (longer ones are cut at a word).
        max_growth: per call, the new notes take at most this fraction of the new messages'
            tokens (the best-scoring clauses win), so the summary compresses what it summarizes
            at least ``1 / max_growth`` times before any budget applies.
        min_growth_tokens: the growth always allowed, so a short batch still keeps its facts.
        counter: a token counter (default: the shared one for ``model``).

    Over budget, the clauses worth least per token are dropped first (:func:`clause_score`,
    damped by length), older before newer at equal worth;
    a summary with any fact in it is never empty (the best clause is cut to fit).
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        min_score: float = 1.5,
        max_clause_tokens: int = 24,
        max_growth: float = 0.25,
        min_growth_tokens: int = 64,
        counter: TokenCounter | None = None,
    ) -> None:
        self.counter = counter or token_counter(model)
        self.min_score = min_score
        self.max_clause_tokens = max_clause_tokens
        self.max_growth = max_growth
        self.min_growth_tokens = min_growth_tokens
        self._analysed: dict[tuple[str, str], tuple[str, frozenset[str], float, int]] = {}

    def summarize(self, request: SummaryRequest) -> str:
        notes = self._parse(request.previous_summary)
        candidates: list[tuple[float, int, str, _Clause]] = []
        input_tokens = 0
        for message in request.messages:
            label = _label(message.name, message.role)
            for call in message.tool_calls:
                text = f"used tool {clean_text(call.name)}"
                candidates.append((2.0, len(candidates), label, self._clause(text, 1.0)))
            if message.role == "tool":
                continue  # tool output is bulky; the call above records that it happened
            input_tokens += self.counter.count_text(message.content)
            bonus = 1.25 if message.role == "user" else 1.0
            for sentence in _SENTENCE_SPLIT.split(message.content):
                rank = selection_score(sentence) * bonus
                if rank < self.min_score:
                    continue
                for text in compress_sentence(sentence, self.min_score / 2):
                    clause = self._clause(text, 1.0, _speaker(label))
                    candidates.append((rank, len(candidates), label, clause))
        allowed = max(self.min_growth_tokens, int(self.max_growth * input_tokens))
        chosen: list[tuple[float, int, str, _Clause]] = []
        for candidate in sorted(candidates, key=lambda c: (-c[0], c[1])):
            if candidate[3].tokens + 1 <= allowed:
                allowed -= candidate[3].tokens + 1
                chosen.append(candidate)
        for _, order, label, clause in sorted(chosen, key=lambda c: c[1]):
            clause.age = 1.0 + (order + 1) * 1e-6
            notes.merge(label, clause)
        return self._fit(notes, request.max_tokens)

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)

    def _clause(self, text: str, age: float, speaker: str = "user") -> _Clause:
        known = self._analysed.get((speaker, text))
        if known is None:
            cut = text
            if self.counter.count_text(text) > self.max_clause_tokens:
                cut = self._shorten(text)
            if self.counter.count_text(cut) > self.max_clause_tokens:
                cut = self.counter.truncate(cut, self.max_clause_tokens)
                cut = (cut.rsplit(" ", 1)[0] if " " in cut.strip() else cut).rstrip(" ,.:-")
            known = (
                cut,
                _content_words(cut),
                clause_score(cut, speaker),
                self.counter.count_text(cut),
            )
            if len(self._analysed) >= 100_000:
                self._analysed.clear()
            self._analysed[(speaker, text)] = known
        return _Clause(known[0], known[1], known[2], known[3], age)

    def _shorten(self, text: str) -> str:
        """An over-long clause without its comma-separated asides that carry no fact ("Speaking
        of unwinding, ..."), weakest first, so a cut at the end loses less ("by 7 pm")."""
        segments = [part for part in re.split(r",\s+", text) if part]
        if len(segments) < 2:
            return text
        asides = sorted(
            (i for i, part in enumerate(segments) if clause_score(part) == 0.0),
            key=lambda i: (len(segments[i]), i),
        )
        dropped: set[int] = set()
        for index in asides:
            if len(dropped) + 1 == len(segments):
                break
            dropped.add(index)
            shorter = ", ".join(p for i, p in enumerate(segments) if i not in dropped)
            if self.counter.count_text(shorter) <= self.max_clause_tokens:
                return shorter
        return ", ".join(p for i, p in enumerate(segments) if i not in dropped)

    def _parse(self, summary: str) -> _Notes:
        """The notes of a previous summary (this class's lines; other text as ``Notes``)."""
        notes = _Notes()
        for raw in summary.splitlines():
            line = raw.strip().removeprefix("- ").strip()
            if not line:
                continue
            label, sep, body = line.partition(": ")
            if not sep or len(label) > 32 or not re.fullmatch(r"[\w .'-]+", label):
                label, body = "Notes", line
            parts = [clean_text(p).strip(" .") for p in body.split(_CLAUSE_SEPARATOR)]
            parts = [p for p in parts if p]
            for index, text in enumerate(parts):
                notes.add(label, self._clause(text, (index + 1) / len(parts), _speaker(label)))
        return notes

    @staticmethod
    def _render(speakers: dict[str, list[_Clause]]) -> str:
        return "\n".join(
            f"{label}: {_CLAUSE_SEPARATOR.join(c.text for c in clauses)}"
            for label, clauses in speakers.items()
            if clauses
        )

    def _fit(self, notes: _Notes, max_tokens: int) -> str:
        kept = {label: list(clauses.values()) for label, clauses in notes.speakers.items()}
        total = sum(c.tokens + 1 for c in notes.clauses())
        total += sum(self.counter.count_text(label) + 2 for label in kept)
        # Weakest first; what the user said counts 1.25x; among equals the oldest goes first.
        weighted = [
            (round((1.25 if label == "User" else 1.0) * _worth_per_token(c) * 2), c.age, c)
            for label, cs in notes.speakers.items()
            for c in cs.values()
        ]
        ranked = [c for *_, c in sorted(weighted, key=lambda item: (item[0], item[1]))]
        dropped: set[int] = set()
        for clause in ranked[:-1]:  # the best note stays, cut to fit if need be
            if total <= max_tokens:
                break
            dropped.add(id(clause))
            total -= clause.tokens + 1
        kept = {k: [c for c in cs if id(c) not in dropped] for k, cs in kept.items()}
        text = self._render(kept)
        # The estimate above can be off by a token or two per line: settle on the exact count.
        for clause in ranked:
            if self.counter.count_text(text) <= max_tokens:
                return text
            if id(clause) in dropped or sum(len(cs) for cs in kept.values()) == 1:
                continue
            kept = {k: [c for c in cs if c is not clause] for k, cs in kept.items()}
            text = self._render(kept)
        if self.counter.count_text(text) <= max_tokens:
            return text
        return self.counter.truncate(text, max_tokens).rstrip()


__all__ = ["ExtractiveSummarizer", "clause_score", "clean_text", "compress_sentence", "fact_score"]
