"""The one LoCoMo loader: conversations as ordered turns, questions with clean evidence ids.

LoCoMo JSON: a list of samples; ``sample["conversation"]`` holds ``speaker_a``/``speaker_b``,
``session_<n>`` turn lists and ``session_<n>_date_time`` ("1:56 pm on 8 May, 2023");
``sample["qa"]`` holds ``{question, answer, evidence: [dia_id], category}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path("../shared/data/locomo/locomo-dev.json")
CATEGORY_NAMES = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
#: Categories scored by the retrieval and QA benchmarks (5, adversarial, has no answer).
SCORED_CATEGORIES = (1, 2, 3, 4)
_SESSION_KEY = re.compile(r"session_(\d+)")
_DIA_ID = re.compile(r"D:?(\d+):(\d+)")
_DATE_FORMAT = "%I:%M %p on %d %B, %Y"


@dataclass(frozen=True)
class Turn:
    """One utterance of a LoCoMo conversation."""

    sample_id: str
    session: int
    index: int  # position in the whole conversation, from 0
    dia_id: str
    speaker: str
    text: str  # the utterance, plus " [shares a photo: caption]" when it has an image
    created_at: datetime
    is_speaker_a: bool
    named: bool = True  # LoCoMo speakers are names; LongMemEval's are only "user"/"assistant"

    @property
    def message_id(self) -> str:
        return f"{self.sample_id}:{self.dia_id}"

    @property
    def document(self) -> str:
        """The text peers index for this turn: speaker name and utterance (LongMemEval: the
        utterance, its speaker being a role, not a name)."""
        return f"{self.speaker}: {self.text}" if self.named else self.text

    @property
    def chat_role(self) -> str:
        """Role when replayed as a two-party chat: speaker_a is the user."""
        return "user" if self.is_speaker_a else "assistant"


@dataclass(frozen=True)
class Question:
    sample_id: str
    question: str
    answer: str
    evidence: tuple[str, ...]  # valid dia_ids of this conversation, in dataset order
    category: int
    category_name: str = ""
    #: LongMemEval: the evidence sessions (``answer_session_ids``), as session numbers
    evidence_sessions: tuple[int, ...] = ()
    asked_at: datetime | None = None  # LongMemEval's question_date; LoCoMo has none
    abstention: bool = False  # LongMemEval ``_abs`` questions: the answer is "not mentioned"


@dataclass
class Conversation:
    sample_id: str
    speaker_a: str
    speaker_b: str
    sessions: dict[int, list[Turn]]
    session_dates: dict[int, datetime]
    questions: list[Question] = field(default_factory=list)
    dropped_evidence: int = 0  # evidence ids not found in the conversation
    dataset: str = "locomo"  # or "longmemeval" (one question per haystack)
    session_ids: dict[int, str] = field(default_factory=dict)  # LongMemEval's session ids

    @property
    def turns(self) -> list[Turn]:
        return [turn for number in sorted(self.sessions) for turn in self.sessions[number]]

    def dia_ids(self) -> set[str]:
        return {turn.dia_id for turn in self.turns}


def parse_session_date(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` as an aware UTC datetime."""
    return datetime.strptime(text.strip(), _DATE_FORMAT).replace(tzinfo=timezone.utc)


def normalize_evidence(raw: Sequence[str], known: set[str]) -> tuple[tuple[str, ...], int]:
    """Clean dataset evidence ids (``"D8:6; D9:17"``, ``"D:11:26"``); return (kept, dropped)."""
    kept: list[str] = []
    dropped = 0
    for item in raw:
        found = [f"D{a}:{b}" for a, b in _DIA_ID.findall(str(item))]
        if not found:
            dropped += 1
        for dia_id in found:
            if dia_id not in known:
                dropped += 1
            elif dia_id not in kept:
                kept.append(dia_id)
    return tuple(kept), dropped


def turn_text(raw: dict[str, Any]) -> str:
    text = str(raw.get("text") or "").strip()
    caption = raw.get("blip_caption")
    if caption:
        text = f"{text} [shares a photo: {str(caption).strip()}]".strip()
    return text


def parse_conversation(sample: dict[str, Any]) -> Conversation:
    conv = sample["conversation"]
    sample_id = str(sample["sample_id"])
    speaker_a, speaker_b = conv["speaker_a"], conv["speaker_b"]
    sessions: dict[int, list[Turn]] = {}
    dates: dict[int, datetime] = {}
    numbers = sorted(int(m.group(1)) for key in conv if (m := _SESSION_KEY.fullmatch(key)))
    index = 0
    for number in numbers:
        raw_turns = conv.get(f"session_{number}") or []
        if not raw_turns:
            continue
        date = parse_session_date(conv[f"session_{number}_date_time"])
        dates[number] = date
        turns: list[Turn] = []
        for offset, raw in enumerate(raw_turns):
            text = turn_text(raw)
            if not text:
                continue
            turns.append(
                Turn(
                    sample_id=sample_id,
                    session=number,
                    index=index,
                    dia_id=str(raw["dia_id"]),
                    speaker=str(raw["speaker"]),
                    text=text,
                    created_at=date + timedelta(seconds=offset),  # keeps the order in a session
                    is_speaker_a=raw["speaker"] == speaker_a,
                )
            )
            index += 1
        sessions[number] = turns
    conversation = Conversation(sample_id, speaker_a, speaker_b, sessions, dates)
    known = conversation.dia_ids()
    for item in sample.get("qa", []):
        category = int(item.get("category", 0))
        evidence, dropped = normalize_evidence(item.get("evidence") or [], known)
        conversation.dropped_evidence += dropped
        answer = item.get("answer", item.get("adversarial_answer", ""))
        conversation.questions.append(
            Question(
                sample_id,
                str(item["question"]),
                str(answer),
                evidence,
                category,
                category_name=CATEGORY_NAMES.get(category, str(category)),
            )
        )
    return conversation


def load_locomo(path: str | Path, limit_conversations: int | None = None) -> list[Conversation]:
    """Read the dataset from ``path`` (never copied anywhere) as conversations."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"LoCoMo data not found at {path}: pass --data PATH (default {DEFAULT_DATA}, relative "
            "to the current directory)"
        )
    samples = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(samples, list):
        raise ValueError(f"{path}: expected a JSON list of LoCoMo samples")
    conversations = [parse_conversation(sample) for sample in samples]
    if limit_conversations is not None:
        conversations = conversations[:limit_conversations]
    return conversations


def is_scored(conversation: Conversation, question: Question) -> bool:
    """LoCoMo: categories 1-4; LongMemEval: not an abstention. Both: some evidence turn."""
    if not question.evidence:
        return False
    if conversation.dataset == "longmemeval":
        return not question.abstention
    return question.category in SCORED_CATEGORIES


def scored_questions(conversation: Conversation, limit: int | None = None) -> list[Question]:
    """The scored questions (:func:`is_scored`) of a conversation (first ``limit``)."""
    chosen = [q for q in conversation.questions if is_scored(conversation, q)]
    return chosen if limit is None else chosen[:limit]


def iter_turns(conversations: Sequence[Conversation]) -> Iterator[Turn]:
    for conversation in conversations:
        yield from conversation.turns
