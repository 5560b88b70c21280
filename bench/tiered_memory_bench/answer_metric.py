"""Pure scoring of one prompt: is the gold answer in it, which evidence turns are in it, where.

No model is involved: *answer hit* asks whether the normalized gold answer occurs (on word
boundaries) in the normalized prompt text; *evidence coverage* is the fraction of the question's
evidence turns present verbatim (whitespace collapsed) in one of the prompt's parts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: The parts of a prompt, in the order evidence is attributed to them.
TIERS = ("window", "summary", "injected", "recall")
MISSING = "missing"

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
}  # fmt: skip
_UNITS = {w: n for w, n in _NUMBER_WORDS.items() if n < 10}
_TENS = {w: n for w, n in _NUMBER_WORDS.items() if 20 <= n < 100 and n % 10 == 0}
_ARTICLES = frozenset({"a", "an", "the"})
_NON_WORD = re.compile(r"[^\w\s]|_")


def _numbers_as_digits(words: list[str]) -> list[str]:
    """Number words as digits: "three" -> "3", "twenty five"/"twenty-five" -> "25"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _TENS and i + 1 < len(words) and words[i + 1] in _UNITS:
            out.append(str(_TENS[word] + _UNITS[words[i + 1]]))
            i += 2
            continue
        out.append(str(_NUMBER_WORDS[word]) if word in _NUMBER_WORDS else word)
        i += 1
    return out


def normalize_answer(text: str) -> str:
    """Casefold, punctuation to spaces, articles dropped, number words as digits, one space.

    ``"The Lisbon marathon!"`` -> ``"lisbon marathon"``; ``"Three weeks"`` -> ``"3 weeks"``.
    """
    words = _NON_WORD.sub(" ", text.casefold()).split()
    return " ".join(w for w in _numbers_as_digits(words) if w not in _ARTICLES)


_ALSO_ACCEPTABLE = re.compile(
    r"^(?P<first>[^.]+?)\.\s+(?P<second>[^.(]+?)\s*(?:\([^)]*\))?\s+is also acceptable\.?\s*$",
    re.IGNORECASE,
)


def answer_variants(answer: str) -> list[str]:
    """The gold answer, or each answer it accepts.

    LongMemEval's counting answers name an alternative: ``"14 days. 15 days (including the last
    day) is also acceptable"`` accepts ``"14 days"`` and ``"15 days"``; as a whole sentence it
    would never occur in a prompt.
    """
    match = _ALSO_ACCEPTABLE.match(answer.strip())
    if match is None:
        return [answer]
    return [match["first"], match["second"]]


def contains_answer(normalized_text: str, answer: str) -> bool:
    """Whether ``answer`` (raw; or one answer it accepts) occurs on word boundaries in an already
    normalized text."""
    padded = f" {normalized_text} "
    for variant in answer_variants(answer):
        wanted = normalize_answer(variant)
        if wanted and f" {wanted} " in padded:
            return True
    return False


def collapse(text: str) -> str:
    """Whitespace collapsed to single spaces (what "verbatim" compares)."""
    return " ".join(text.split())


@dataclass
class PromptParts:
    """What one model call receives, split by where each text came from.

    ``messages`` is the prompt in order (OpenAI dicts, the question last); ``parts[tier]`` the
    raw texts of each tier (window messages, summary, injected memories, recall-tool hits);
    ``scored_text`` everything the model reads except the question; ``tokens`` the call's
    prompt tokens.
    """

    messages: list[dict[str, str]]
    parts: dict[str, list[str]] = field(default_factory=dict)
    scored_text: str = ""
    tokens: int = 0


@dataclass(frozen=True)
class QuestionScore:
    answer_hit: bool
    answer_in: tuple[str, ...]  # the tiers whose text alone contains the answer
    evidence_coverage: float
    evidence_where: tuple[str, ...]  # per evidence turn: the first tier holding it, or MISSING
    prompt_tokens: int


def haystacks(parts: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Per tier, its texts collapsed and joined by NUL (a needle never spans two texts)."""
    return {tier: "\x00".join(collapse(text) for text in parts.get(tier, ())) for tier in TIERS}


def evidence_location(turn_text: str, stacks: Mapping[str, str]) -> str:
    """The first tier (:data:`TIERS` order) holding ``turn_text`` verbatim, or :data:`MISSING`."""
    needle = collapse(turn_text)
    if not needle:
        return MISSING
    for tier in TIERS:
        if needle in stacks.get(tier, ""):
            return tier
    return MISSING


def score_prompt(prompt: PromptParts, answer: str, evidence_texts: Sequence[str]) -> QuestionScore:
    """Score one prompt against a question's gold answer and evidence turn texts."""
    hit = contains_answer(normalize_answer(prompt.scored_text), answer)
    answer_in = tuple(
        tier
        for tier in TIERS
        if prompt.parts.get(tier)
        and contains_answer(normalize_answer("\n".join(prompt.parts[tier])), answer)
    )
    stacks = haystacks(prompt.parts)
    where = tuple(evidence_location(text, stacks) for text in evidence_texts)
    coverage = sum(1 for w in where if w != MISSING) / len(where) if where else 0.0
    return QuestionScore(hit, answer_in, coverage, where, prompt.tokens)
