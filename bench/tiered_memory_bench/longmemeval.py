"""The LongMemEval loader: each question and its haystack as one :class:`Conversation`.

LongMemEval JSON (Wu et al., ICLR 2025): a list of questions; each has ``question_id``,
``question_type``, ``question``, ``answer``, ``question_date`` and its own haystack:
``haystack_sessions`` (lists of ``{role, content, has_answer?}``), ``haystack_session_ids`` and
``haystack_dates`` ("2023/05/20 (Sat) 02:21"); ``answer_session_ids`` are the evidence sessions
and ``has_answer: true`` marks the evidence turns. The objects are those of the LoCoMo loader,
so every benchmark reads either dataset: sessions are numbered from 1 in date order (ties keep
the dataset order), turns get LoCoMo-style ids ``D<session>:<turn>``, the user is speaker_a.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .locomo import Conversation, Question, Turn

DEFAULT_DATA = Path("../shared/data/longmemeval/longmemeval-s-dev.json")
#: LongMemEval's question types, numbered for the per-category tables (abstention is a flag).
QUESTION_TYPES = (
    "single-session-user",
    "single-session-assistant",
    "single-session-preference",
    "multi-session",
    "knowledge-update",
    "temporal-reasoning",
)
_DATE_FORMAT = "%Y/%m/%d (%a) %H:%M"


def parse_longmemeval_date(text: str) -> datetime:
    """``"2023/05/20 (Sat) 02:21"`` as an aware UTC datetime."""
    return datetime.strptime(text.strip(), _DATE_FORMAT).replace(tzinfo=timezone.utc)


def category_of(question_type: str) -> int:
    """The number of a question type (1-6 in :data:`QUESTION_TYPES` order; 0 if unknown)."""
    try:
        return QUESTION_TYPES.index(question_type) + 1
    except ValueError:
        return 0


def parse_question(item: dict[str, Any]) -> Conversation:
    """One LongMemEval question and its haystack as a conversation with one question."""
    sample_id = str(item["question_id"])
    raw_sessions: list[Any] = item.get("haystack_sessions") or []
    ids: list[str] = [str(x) for x in item.get("haystack_session_ids") or []]
    dates: list[str] = [str(x) for x in item.get("haystack_dates") or []]
    if not (len(raw_sessions) == len(ids) == len(dates)):
        raise ValueError(
            f"{sample_id}: haystack_sessions, haystack_session_ids and haystack_dates differ in "
            f"length ({len(raw_sessions)}, {len(ids)}, {len(dates)})"
        )
    order = sorted(range(len(raw_sessions)), key=lambda i: (parse_longmemeval_date(dates[i]), i))
    sessions: dict[int, list[Turn]] = {}
    session_dates: dict[int, datetime] = {}
    session_ids: dict[int, str] = {}
    evidence: list[str] = []
    index = 0
    for number, position in enumerate(order, start=1):
        date = parse_longmemeval_date(dates[position])
        session_dates[number] = date
        session_ids[number] = ids[position]
        turns: list[Turn] = []
        for offset, raw in enumerate(raw_sessions[position]):
            text = str(raw.get("content") or "").strip()
            if not text:
                continue
            role = str(raw.get("role") or "user")
            dia_id = f"D{number}:{offset + 1}"
            turns.append(
                Turn(
                    sample_id=sample_id,
                    session=number,
                    index=index,
                    dia_id=dia_id,
                    speaker=role,
                    text=text,
                    created_at=date + timedelta(seconds=offset),
                    is_speaker_a=role == "user",
                    named=False,
                )
            )
            if raw.get("has_answer"):
                evidence.append(dia_id)
            index += 1
        sessions[number] = turns
    conversation = Conversation(
        sample_id,
        "user",
        "assistant",
        sessions,
        session_dates,
        dataset="longmemeval",
        session_ids=session_ids,
    )
    number_of = {sid: n for n, sid in session_ids.items()}
    wanted = [str(x) for x in item.get("answer_session_ids") or []]
    evidence_sessions = tuple(number_of[sid] for sid in wanted if sid in number_of)
    conversation.dropped_evidence = len(wanted) - len(evidence_sessions)
    question_type = str(item.get("question_type") or "")
    asked = item.get("question_date")
    conversation.questions.append(
        Question(
            sample_id,
            str(item["question"]),
            str(item.get("answer", "")),
            tuple(evidence),
            category_of(question_type),
            category_name=question_type,
            evidence_sessions=evidence_sessions,
            asked_at=parse_longmemeval_date(str(asked)) if asked else None,
            abstention=sample_id.endswith("_abs"),
        )
    )
    return conversation


def scorable(item: dict[str, Any]) -> bool:
    """Not an abstention question, and some turn is marked ``has_answer``."""
    if str(item.get("question_id", "")).endswith("_abs"):
        return False
    return any(
        turn.get("has_answer")
        for session in item.get("haystack_sessions") or []
        for turn in session
    )


def stratified(items: Sequence[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` scorable questions (:func:`scorable`) taken round-robin over question types
    (file order within a type), so a small subset covers every type; every question, scorable
    or not, when ``limit`` is None."""
    if limit is None:
        return list(items)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for item in filter(scorable, items):
        by_type.setdefault(str(item.get("question_type") or ""), []).append(item)
    chosen: list[dict[str, Any]] = []
    depth = 0
    limit = min(limit, sum(len(group) for group in by_type.values()))
    while len(chosen) < limit:
        for group in by_type.values():
            if depth < len(group) and len(chosen) < limit:
                chosen.append(group[depth])
        depth += 1
    return chosen


def is_longmemeval(data: Any) -> bool:
    """True for a list of LongMemEval question objects."""
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and "question_id" in data[0]
        and "haystack_sessions" in data[0]
    )


def load_longmemeval(
    path: str | Path, limit_conversations: int | None = None, data: Any = None
) -> list[Conversation]:
    """Read LongMemEval from ``path`` (never copied anywhere): one conversation per question.

    ``limit_conversations`` keeps that many questions, stratified by type (:func:`stratified`).
    """
    path = Path(path)
    if data is None:
        if not path.is_file():
            raise FileNotFoundError(
                f"LongMemEval data not found at {path}: pass --data PATH (e.g. {DEFAULT_DATA})"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
    if not is_longmemeval(data):
        raise ValueError(f"{path}: expected a JSON list of LongMemEval questions")
    return [parse_question(item) for item in stratified(data, limit_conversations)]
