"""``locomo-qa``: end-to-end question answering scored by an LLM judge, LoCoMo or LongMemEval.

For each question the answer model reads what tiered-memory gives it (summary + window of the
last session, plus recall hits for the question) and answers briefly; the judge grades the
answer against the gold answer with each dataset's own answer-check prompt:

- LoCoMo: the LLM-judge prompt of the Mem0 paper's evaluation (``ACCURACY_PROMPT`` in
  mem0ai/mem0 ``evaluation/metrics/llm_judge.py``, Apache-2.0), CORRECT / WRONG; J is the
  accuracy over categories 1-4.
- LongMemEval: the per-type prompts of ``get_anscheck_prompt`` in LongMemEval's
  ``src/evaluation/evaluate_qa.py`` (MIT, (c) 2024 Di Wu), yes / no ("yes" in the reply, as
  there); every question, abstention ones with the abstention prompt.

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
from .locomo import Conversation, Question, scored_questions
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
LONGMEMEVAL_ANSWER_SYSTEM = (
    "You are a chat assistant talking with a user over many sessions. Answer the user's "
    "question using only the memory below: a summary of older messages, the most recent "
    "messages, and messages retrieved for this question (each with its date). Resolve relative "
    "dates against the date of the message that uses them; the current date is {date}. Answer "
    "briefly; if the memory does not contain the answer, say so."
    "\n\n# Memory\n\n{memory}"
)
#: LoCoMo: the Mem0 paper's LLM judge (mem0ai/mem0 evaluation/metrics/llm_judge.py, Apache-2.0).
JUDGE_PROMPT = """
Your task is to label an answer to a question as ’CORRECT’ or ’WRONG’. You will be given the following data:
    (1) a question (posed by one user to another user), 
    (2) a ’gold’ (ground truth) answer, 
    (3) a generated answer
which you will score as CORRECT/WRONG.

The point of the question is to ask about something one user should know about the other user based on their prior conversations.
The gold answer will usually be a concise and short answer that includes the referenced topic, for example:
Question: Do you remember what I got the last time I went to Hawaii?
Gold answer: A shell necklace
The generated answer might be much longer, but you should be generous with your grading - as long as it touches on the same topic as the gold answer, it should be counted as CORRECT. 

For time related questions, the gold answer will be a specific date, month, year, etc. The generated answer might be much longer or use relative time references (like "last Tuesday" or "next month"), but you should be generous with your grading - as long as it refers to the same date or time period as the gold answer, it should be counted as CORRECT. Even if the format differs (e.g., "May 7th" vs "7 May"), consider it CORRECT if it's the same date.

Now it's time for the real question:
Question: {question}
Gold answer: {gold}
Generated answer: {answer}

First, provide a short (one sentence) explanation of your reasoning, then finish with CORRECT or WRONG. 
Do NOT include both CORRECT and WRONG in your response, or it will break the evaluation script.

Just return the label CORRECT or WRONG in a json format with the key as "label".
"""
_LME_CHECK = (
    "I will give you a question, a correct answer, and a response from a model. Please answer "
    "yes if the response contains the correct answer. Otherwise, answer no. "
)
_LME_STEPS = (
    "If the response is equivalent to the correct answer or contains all the intermediate steps "
    "to get the correct answer, you should also answer yes. If the response only contains a "
    "subset of the information required by the answer, answer no. "
)
_LME_TAIL = (
    "\n\nQuestion: {question}\n\nCorrect Answer: {gold}\n\nModel Response: {answer}\n\n"
    "Is the model response correct? Answer yes or no only."
)
#: LongMemEval's answer-check prompts by question type (evaluate_qa.py, MIT).
LONGMEMEVAL_CHECK_PROMPTS = {
    "single-session-user": _LME_CHECK + _LME_STEPS + _LME_TAIL,
    "single-session-assistant": _LME_CHECK + _LME_STEPS + _LME_TAIL,
    "multi-session": _LME_CHECK + _LME_STEPS + _LME_TAIL,
    "temporal-reasoning": _LME_CHECK
    + _LME_STEPS
    + "In addition, do not penalize off-by-one errors for the number of days. If the question "
    "asks for the number of days/weeks/months, etc., and the model makes off-by-one errors "
    "(e.g., predicting 19 days when the answer is 18), the model's response is still correct. "
    + _LME_TAIL,
    "knowledge-update": _LME_CHECK
    + "If the response contains some previous information along with an updated answer, the "
    "response should be considered as correct as long as the updated answer is the required "
    "answer." + _LME_TAIL,
    "single-session-preference": (
        "I will give you a question, a rubric for desired personalized response, and a response "
        "from a model. Please answer yes if the response satisfies the desired response. "
        "Otherwise, answer no. The model does not need to reflect all the points in the rubric. "
        "The response is correct as long as it recalls and utilizes the user's personal "
        "information correctly.\n\nQuestion: {question}\n\nRubric: {gold}\n\nModel Response: "
        "{answer}\n\nIs the model response correct? Answer yes or no only."
    ),
}
LONGMEMEVAL_ABSTENTION_PROMPT = (
    "I will give you an unanswerable question, an explanation, and a response from a model. "
    "Please answer yes if the model correctly identifies the question as unanswerable. The "
    "model could say that the information is incomplete, or some other information is given "
    "but the asked information is not.\n\nQuestion: {question}\n\nExplanation: {gold}\n\n"
    "Model Response: {answer}\n\nDoes the model correctly identify the question as "
    "unanswerable? Answer yes or no only."
)
_LABEL = re.compile(r"\b(CORRECT|WRONG)\b")


def judge_label(text: str) -> str:
    """CORRECT or WRONG from the judge's reply (the last label it states; WRONG if none)."""
    found = _LABEL.findall(text.upper())
    return found[-1] if found else "WRONG"


def judge_prompt(conversation: Conversation, question: Question, answer: str) -> str:
    """The dataset's own answer-check prompt for one generated answer."""
    if conversation.dataset != "longmemeval":
        return JUDGE_PROMPT.format(question=question.question, gold=question.answer, answer=answer)
    template = (
        LONGMEMEVAL_ABSTENTION_PROMPT
        if question.abstention
        else LONGMEMEVAL_CHECK_PROMPTS.get(question.category_name)
    )
    if template is None:
        raise ValueError(f"no LongMemEval answer-check prompt for type {question.category_name!r}")
    return template.format(question=question.question, gold=question.answer, answer=answer)


def verdict_label(conversation: Conversation, reply: str) -> str:
    """CORRECT or WRONG: LoCoMo's judge states it; LongMemEval's says yes ("yes" in reply)."""
    if conversation.dataset == "longmemeval":
        return "CORRECT" if "yes" in reply.lower() else "WRONG"
    return judge_label(reply)


def qa_questions(conversation: Conversation, limit: int | None) -> list[Question]:
    """LoCoMo: the scored categories 1-4; LongMemEval: every question, abstention included
    (its official evaluation grades them with the abstention prompt)."""
    if conversation.dataset == "longmemeval":
        return conversation.questions if limit is None else conversation.questions[:limit]
    return scored_questions(conversation, limit)


def answer_system(conversation: Conversation, question: Question) -> str:
    """The answer model's system prompt, ``{memory}`` left to fill."""
    if conversation.dataset == "longmemeval":
        date = question.asked_at.strftime("%Y-%m-%d %H:%M") if question.asked_at else "unknown"
        return LONGMEMEVAL_ANSWER_SYSTEM.replace("{date}", date)
    return ANSWER_SYSTEM.format(
        a=conversation.speaker_a, b=conversation.speaker_b, memory="{memory}"
    )


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
            asked = qa_questions(conversation, limit_questions)
            if not asked:
                continue
            workdir = Path(tmp) / conversation.sample_id
            workdir.mkdir(parents=True, exist_ok=True)
            retriever = TieredMemoryRetriever(workdir, embedder, summarizer=summarizer)
            try:
                retriever.index(conversation)
                for number, q in enumerate(progress(asked, f"qa {conversation.sample_id}")):
                    system = answer_system(conversation, q)
                    start = time.perf_counter()
                    memory = memory_text(retriever.memory, q.question, recall_k)
                    answer = _reply(
                        answer_model,
                        [("system", system.format(memory=memory)), ("human", q.question)],
                    )
                    latencies.append((time.perf_counter() - start) * 1000.0)
                    verdict = _reply(
                        judge_model, [("human", judge_prompt(conversation, q, answer))]
                    )
                    # ids and labels only: LoCoMo's text (CC BY-NC) stays out of the results
                    records.append(
                        {
                            "sample_id": q.sample_id,
                            "question_index": number,
                            "category": q.category,
                            "category_name": q.category_name,
                            "abstention": q.abstention,
                            "label": verdict_label(conversation, verdict),
                        }
                    )
            finally:
                retriever.close()
    correct = [1.0 if r["label"] == "CORRECT" else 0.0 for r in records]
    by_category = {
        str(c): {
            "j": round(mean([1.0 if r["label"] == "CORRECT" else 0.0 for r in rows]), 4),
            "questions": len(rows),
            "name": rows[0]["category_name"],
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
