"""``locomo-qa``: end-to-end question answering scored by an LLM judge (the Mem0 paper's J).

For each question the answer model reads what tiered-memory gives it (summary + window of the
last session, plus recall hits for the question) and answers briefly; the judge labels the
answer CORRECT or WRONG against the gold answer. J is the accuracy over categories 1-4.
Models are LangChain chat models, injectable (offline tests use fakes).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import CachingEmbedder, note, progress
from .locomo import CATEGORY_NAMES, Conversation, scored_questions
from .metrics import mean, percentile
from .retrievers import TieredMemoryRetriever

ANSWER_SYSTEM = (
    "You answer questions about a long-running conversation between {a} and {b}, using only "
    "the memory below: a summary of older messages, the most recent messages, and messages "
    "retrieved for this question (each with its date). Resolve relative dates ('yesterday', "
    "'last week') against the date of the message that uses them. Answer with a short phrase "
    "(a few words, a name, a date); if the memory does not say, answer with your best guess."
    "\n\n# Memory\n\n{memory}"
)
JUDGE_PROMPT = (
    "You grade an answer to a question about a conversation. You get the question, the gold "
    "answer and the generated answer. Be generous: the generated answer is CORRECT when it "
    "refers to the same thing as the gold answer, even if longer or worded differently; for "
    "dates and times, any format naming the same day, month or period is CORRECT. Otherwise it "
    "is WRONG.\n\nQuestion: {question}\nGold answer: {gold}\nGenerated answer: {answer}\n\n"
    "Reply with one word: CORRECT or WRONG."
)
_LABEL = re.compile(r"\b(CORRECT|WRONG)\b")


def judge_label(text: str) -> str:
    """CORRECT or WRONG from the judge's reply (the last label it states; WRONG if none)."""
    found = _LABEL.findall(text.upper())
    return found[-1] if found else "WRONG"


def memory_text(memory: Any, question: str, recall_k: int) -> str:
    """What the answer model reads: summary + recent messages + recall hits for the question."""
    from tiered_memory import format_recall_hits
    from tiered_memory.summary import render_transcript

    context = memory.context_messages()
    summary = [m for m in context if m.role == "system"]
    recent = [m for m in context if m.role != "system"]
    parts = []
    if summary:
        parts.append("## Summary of older messages\n" + "\n".join(m.content for m in summary))
    if recent:
        parts.append("## Most recent messages\n" + render_transcript(recent))
    hits = memory.recall(question, k=recall_k)
    if hits:
        parts.append("## Retrieved messages\n" + format_recall_hits(hits))
    return "\n\n".join(parts)


def _reply(model: Any, messages: list[tuple[str, str]]) -> str:
    response = model.invoke(messages)
    content = getattr(response, "content", response)
    return content if isinstance(content, str) else str(content)


def run_qa(
    conversations: Sequence[Conversation],
    answer_model: Any,
    judge_model: Any,
    embedder: CachingEmbedder,
    limit_questions: int | None = None,
    recall_k: int = 10,
    summarizer: Any = "extractive",
    dataset: str = "",
    model_names: tuple[str, str] = ("", ""),
) -> dict[str, Any]:
    """Replay each conversation into tiered-memory, answer and judge its questions."""
    records: list[dict[str, Any]] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-qa-") as tmp:
        for conversation in conversations:
            asked = scored_questions(conversation, limit_questions)
            if not asked:
                continue
            workdir = Path(tmp) / conversation.sample_id
            workdir.mkdir(parents=True, exist_ok=True)
            retriever = TieredMemoryRetriever(workdir, embedder, summarizer=summarizer)
            try:
                retriever.index(conversation)
                system = ANSWER_SYSTEM.format(
                    a=conversation.speaker_a, b=conversation.speaker_b, memory="{memory}"
                )
                for number, q in enumerate(progress(asked, f"qa {conversation.sample_id}")):
                    start = time.perf_counter()
                    memory = memory_text(retriever.memory, q.question, recall_k)
                    answer = _reply(
                        answer_model,
                        [("system", system.format(memory=memory)), ("human", q.question)],
                    )
                    latencies.append((time.perf_counter() - start) * 1000.0)
                    verdict = _reply(
                        judge_model,
                        [
                            (
                                "human",
                                JUDGE_PROMPT.format(
                                    question=q.question, gold=q.answer, answer=answer
                                ),
                            )
                        ],
                    )
                    # ids and labels only: LoCoMo's text (CC BY-NC) stays out of the results
                    records.append(
                        {
                            "sample_id": q.sample_id,
                            "question_index": number,
                            "category": q.category,
                            "label": judge_label(verdict),
                        }
                    )
            finally:
                retriever.close()
    correct = [1.0 if r["label"] == "CORRECT" else 0.0 for r in records]
    by_category = {
        str(c): {
            "j": round(mean([1.0 if r["label"] == "CORRECT" else 0.0 for r in rows]), 4),
            "questions": len(rows),
            "name": CATEGORY_NAMES[c],
        }
        for c in sorted({r["category"] for r in records})
        if (rows := [r for r in records if r["category"] == c])
    }
    result: dict[str, Any] = {
        "dataset": dataset,
        "questions": len(records),
        "answer_model": model_names[0],
        "judge_model": model_names[1],
        "systems": {
            "tiered-memory": {
                "j": round(mean(correct), 4),
                "by_category": by_category,
                "answer_p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            }
        },
        "labels": records,
    }
    note(
        f"  tiered-memory: J = {result['systems']['tiered-memory']['j']:.3f} "
        f"over {len(records)} questions"
    )
    return result
