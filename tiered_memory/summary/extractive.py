"""The offline default summarizer: deterministic, no model, no key."""

from __future__ import annotations

import re
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


@dataclass(frozen=True)
class _Line:
    text: str
    score: float


class ExtractiveSummarizer:
    """Deterministic, offline summarizer: keeps the fact-bearing sentences verbatim.

    The summary is a list of ``- Speaker: sentence`` lines. New lines are appended (the summary is
    extended, never rewritten); over budget, the lowest-scoring lines are dropped first, older
    before newer at equal score.
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        min_score: float = 1.0,
        max_sentence_tokens: int = 80,
        counter: TokenCounter | None = None,
    ) -> None:
        self.counter = counter or token_counter(model)
        self.min_score = min_score
        self.max_sentence_tokens = max_sentence_tokens

    def summarize(self, request: SummaryRequest) -> str:
        lines = [self._parse_line(line) for line in request.previous_summary.splitlines()]
        lines = [line for line in lines if line.text]
        seen = {line.text for line in lines}
        for message in request.messages:
            if message.role == "tool":
                continue  # tool output is bulky; the call (below) records that it happened
            speaker = message.name or message.role.capitalize()
            for sentence in _SENTENCE_SPLIT.split(message.content):
                sentence = " ".join(sentence.split())
                score = fact_score(sentence)
                if message.role == "user":
                    score *= 1.25  # what the user says about themselves matters most
                if score < self.min_score:
                    continue
                limit = min(self.max_sentence_tokens, max(8, request.max_tokens // 3))
                sentence = self.counter.truncate(sentence, limit)
                text = f"- {speaker}: {sentence}"
                if text not in seen:
                    seen.add(text)
                    lines.append(_Line(text, score))
            for call in message.tool_calls:
                text = f"- {speaker} used tool {call.name}."
                if text not in seen:
                    seen.add(text)
                    lines.append(_Line(text, 0.5 + self.min_score))
        return self._fit(lines, request.max_tokens)

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)

    def _parse_line(self, raw: str) -> _Line:
        text = raw.strip()
        if not text:
            return _Line("", 0.0)
        if not text.startswith("- "):
            text = f"- {text}"
        body = text.split(": ", 1)[-1]
        return _Line(text, fact_score(body))

    def _fit(self, lines: list[_Line], max_tokens: int) -> str:
        costs = [self.counter.count_text(line.text) + 1 for line in lines]
        total = sum(costs)
        keep = [True] * len(lines)
        # Drop the weakest lines first; among equals, the oldest goes first.
        for index in sorted(range(len(lines)), key=lambda i: (lines[i].score, i)):
            if total <= max_tokens:
                break
            keep[index] = False
            total -= costs[index]
        return "\n".join(line.text for line, kept in zip(lines, keep, strict=True) if kept)


__all__ = ["ExtractiveSummarizer", "fact_score"]
