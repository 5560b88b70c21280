"""``answer-availability``: is the answer still in what the model receives, at what token cost?

Each conversation is replayed into each memory as a chat app would (sessions in date order; for
tiered-memory each dataset session is a memory session of the same user; the other memories are
one thread). After the last turn, each question is asked in the last session: the prompt is the
memory's context (summary + window + whatever the system injects for the question), plus, for
tiered-memory, its recall tool's answer ``format_recall_hits(recall(question, k=5))``, plus the
question. Scores (:mod:`tiered_memory_bench.answer_metric`): answer hit, evidence coverage,
prompt tokens; full history is the ceiling. All systems share one offline summarizer
(``ExtractiveSummarizer``) and one embedder.
"""

from __future__ import annotations

import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .answer_metric import MISSING, TIERS, PromptParts, QuestionScore, collapse, score_prompt
from .chat_memories import (
    Budgets,
    ChatMemory,
    FullHistory,
    LangChainSummarization,
    LangChainTrim,
    SeedPolicy,
    TieredChat,
    token_list,
    trimmed,
)
from .common import CachingEmbedder, count_prompt, note, progress, runnable_systems
from .locomo import Conversation, Question, Turn, scored_questions
from .metrics import mean

RECALL_K = 5
DIAGNOSIS_K = 25  # how deep tiered-memory's recall is searched to say where a lost turn ranked
LANGCHAIN_SUMMARY_PREFIX = "Here is a summary of the conversation to date:"


class AvailabilityMemory(Protocol):
    name: str

    def start_session(self, number: int) -> None: ...

    def add(self, turn: Turn) -> None: ...

    def build(self, question: str) -> PromptParts: ...

    def close(self) -> None: ...


def with_question(
    context: list[dict[str, str]], parts: dict[str, list[str]], question: str, extra_tokens: int = 0
) -> PromptParts:
    messages = [*context, {"role": "user", "content": question}]
    scored = "\n".join(m["content"] for m in context)
    return PromptParts(messages, parts, scored, count_prompt(messages) + extra_tokens)


def split_context(context: list[dict[str, str]]) -> dict[str, list[str]]:
    """A chat memory's context by tier: system messages and LangChain's summary message are the
    summary, the other messages the window."""
    parts: dict[str, list[str]] = {tier: [] for tier in TIERS}
    for message in context:
        content = message["content"]
        is_summary = message["role"] == "system" or content.startswith(LANGCHAIN_SUMMARY_PREFIX)
        parts["summary" if is_summary else "window"].append(content)
    return parts


class ChatReplay:
    """Any :class:`~tiered_memory_bench.chat_memories.ChatMemory`: the prompt is its context."""

    def __init__(self, memory: ChatMemory) -> None:
        self.memory = memory
        self.name = memory.name
        self._context: tuple[list[dict[str, str]], dict[str, list[str]]] | None = None

    def start_session(self, number: int) -> None:
        self._context = None

    def add(self, turn: Turn) -> None:
        self._context = None
        self.memory.add(turn.chat_role, turn.text, turn.created_at)

    def context(self) -> tuple[list[dict[str, str]], dict[str, list[str]]]:
        if self._context is None:  # the same for every question of a conversation
            context = self.memory.prompt()
            self._context = (context, split_context(context))
        return self._context

    def build(self, question: str) -> PromptParts:
        context, parts = self.context()
        return with_question(context, {k: list(v) for k, v in parts.items()}, question)

    def close(self) -> None:
        self.memory.close()


class TieredReplay(ChatReplay):
    """tiered-memory: one memory session per dataset session; context + the recall tool."""

    memory: TieredChat
    dated = True
    """Whether the question is asked at its date (``now=``: LongMemEval's question_date), as a chat
    app knows when it is asked; its recall answer counts ages from then (the clock if unknown)."""
    asked_at: datetime | None = None
    facts = True
    """False: issue 16's facts and time-aware ranking off (the before of ``tm-facts``)."""

    def start_session(self, number: int) -> None:
        super().start_session(number)
        self.memory.start_session(f"session_{number}")
        if not self.facts:
            from tiered_memory.recall.timeline import TimelineWeights

            mem = self.memory.memory
            mem.facts = None
            mem.compactor.after_commit = None
            mem.tier3.facts = None
            mem.tier3.timeline = TimelineWeights(time=0.0, stale=0.0, stale_source=0.0)

    def recall(self, question: str, k: int) -> list[Any]:
        return list(self.memory.memory.recall(question, k=k, now=self.asked_at))

    def build(self, question: str) -> PromptParts:
        from tiered_memory import format_recall_hits

        context, parts = self.context()
        hits = self.recall(question, RECALL_K)
        answer = format_recall_hits(hits, now=self.asked_at)
        built = with_question(
            context,
            {**{k: list(v) for k, v in parts.items()}, "recall": [h.text for h in hits]},
            question,
            extra_tokens=count_prompt([{"role": "user", "content": answer}]),
        )
        built.messages.append({"role": "tool", "content": answer})
        built.scored_text += "\n" + answer
        return built


class LlamaIndexVectorChat:
    """LlamaIndex ``Memory`` with a ``VectorMemoryBlock`` (top 5 nodes), one chat thread.

    One ``Memory`` for the whole replay: the block filters its search by the Memory's
    ``session_id``, so a Memory per dataset session would never retrieve an earlier session.
    The prompt is ``memory.get(input=question)``: chat history plus the block's retrieved
    messages in a system message.
    """

    name = "llamaindex-vector-memory"

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str, embedder: Any):
        from llama_index.core.memory import Memory, VectorMemoryBlock

        from .retrievers import (
            LlamaIndexBlockSettings,
            llamaindex_embedding,
            text_simple_vector_store,
        )

        settings = LlamaIndexBlockSettings(window_tokens=budgets.window_tokens)
        self.block = VectorMemoryBlock(
            vector_store=text_simple_vector_store(),
            embed_model=llamaindex_embedding(embedder),
            similarity_top_k=RECALL_K,
        )
        self.memory = Memory.from_defaults(
            session_id=f"{conversation_id}-chat",
            token_limit=settings.token_limit,
            chat_history_token_ratio=settings.chat_history_token_ratio,
            token_flush_size=settings.flush_tokens,
            memory_blocks=[self.block],
            tokenizer_fn=token_list,
        )

    def start_session(self, number: int) -> None:
        return None

    def add(self, turn: Turn) -> None:
        from llama_index.core.base.llms.types import ChatMessage

        self.memory.put(ChatMessage(role=turn.chat_role, content=turn.text))

    def build(self, question: str) -> PromptParts:
        messages = self.memory.get(input=question)
        context = [{"role": str(m.role.value), "content": m.content or ""} for m in messages]
        parts: dict[str, list[str]] = {tier: [] for tier in TIERS}
        for message in context:
            injected = message["role"] == "system" and "<memory>" in message["content"]
            parts["injected" if injected else "window"].append(message["content"])
        return with_question(context, parts, question)

    def close(self) -> None:
        self.memory.reset()
        self.block.vector_store.clear()


class Mem0Chat:
    """Mem0 OSS: every turn stored raw (``infer=False``, run_id = session), search top 5 for
    the question injected as a system message, before the thread's recent messages trimmed
    to the window budget (what a chat app keeps of its own thread)."""

    name = "mem0"

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str, embedder: Any):
        from .retrievers import mem0_memory

        self.budgets = budgets
        self.user_id = conversation_id
        self.embedder = embedder
        self.memory = mem0_memory(workdir, embedder, f"mem0-{conversation_id}")
        self.session = 0
        self.thread: list[Any] = []

    def start_session(self, number: int) -> None:
        self.session = number

    def add(self, turn: Turn) -> None:
        from langchain_core.messages import AIMessage, HumanMessage

        self.memory.add(
            [{"role": turn.chat_role, "content": turn.text}],
            user_id=self.user_id,
            run_id=f"session_{self.session}",
            infer=False,
        )
        cls = HumanMessage if turn.chat_role == "user" else AIMessage
        self.thread.append(cls(content=turn.text))

    def build(self, question: str) -> PromptParts:
        found = self.memory.search(
            question, top_k=RECALL_K, filters={"user_id": self.user_id}, threshold=0.0
        )
        memories = [str(item["memory"]) for item in found["results"]]
        window = trimmed(self.thread, self.budgets.window_tokens)
        head = "Relevant memories of the user:\n" + "\n".join(f"- {m}" for m in memories)
        context = [{"role": "system", "content": head}, *window]
        parts = {tier: [] for tier in TIERS}
        parts["injected"] = memories
        parts["window"] = [m["content"] for m in window]
        return with_question(context, parts, question)

    def close(self) -> None:
        self.memory = None


AvailabilityFactory = Callable[[Budgets, Path, str, CachingEmbedder], AvailabilityMemory]


def _offline_summarizer() -> Any:
    from tiered_memory import ExtractiveSummarizer

    return ExtractiveSummarizer()


def _chat(cls: Any, **kwargs: Any) -> AvailabilityFactory:
    def factory(budgets: Budgets, workdir: Path, conversation_id: str, embedder: Any) -> Any:
        return ChatReplay(cls(budgets, workdir, conversation_id, **kwargs))

    return factory


def _summarizing(cls: Any) -> AvailabilityFactory:
    def factory(budgets: Budgets, workdir: Path, conversation_id: str, embedder: Any) -> Any:
        return ChatReplay(cls(budgets, workdir, conversation_id, summarizer=_offline_summarizer()))

    return factory


def _tiered(budgets: Budgets, workdir: Path, conversation_id: str, embedder: Any) -> Any:
    chat = TieredChat(
        budgets, workdir, conversation_id, embedder=embedder, summarizer=_offline_summarizer()
    )
    return TieredReplay(chat)


def _tiered_variant(*, dated: bool, facts: bool) -> AvailabilityFactory:
    """tiered-memory with the question's date as ``now`` and/or without facts (issue 16)."""

    def factory(budgets: Budgets, workdir: Path, conversation_id: str, embedder: Any) -> Any:
        replay = _tiered(budgets, workdir, conversation_id, embedder)
        replay.dated, replay.facts = dated, facts
        return replay

    return factory


#: name -> (factory, the package it needs: a missing package is a recorded skip)
AVAILABILITY_SYSTEMS: dict[str, tuple[AvailabilityFactory, str]] = {
    "full-history": (_chat(FullHistory), "tiered_memory"),
    "tiered-memory": (_tiered, "tiered_memory"),
    "tm-facts": (_tiered_variant(dated=True, facts=True), "tiered_memory"),
    "tm-before-facts": (_tiered_variant(dated=False, facts=False), "tiered_memory"),
    "seed-policy": (_summarizing(SeedPolicy), "tiered_memory"),
    "langchain-summarization": (
        _summarizing(LangChainSummarization),
        "langchain.agents.middleware",
    ),
    "langchain-trim": (_chat(LangChainTrim), "langchain_core.messages"),
    "llamaindex-vector-memory": (LlamaIndexVectorChat, "llama_index.core"),
    "mem0": (Mem0Chat, "mem0"),
}
DEFAULT_SYSTEMS = tuple(
    n for n in AVAILABILITY_SYSTEMS if not n.startswith("tm-")
)  # variants: asked


@dataclass
class Asked:
    """One scored question of one system."""

    question: Question
    index: int
    score: QuestionScore
    diagnosis: dict[str, Any] | None = None


def replay_conversation(memory: AvailabilityMemory, conversation: Conversation, label: str) -> None:
    """Every session in order, every turn as a chat message."""
    for number in progress(sorted(conversation.sessions), f"{label} {conversation.sample_id}"):
        memory.start_session(number)
        for turn in conversation.sessions[number]:
            memory.add(turn)


def diagnose_tiered(
    memory: TieredReplay, conversation: Conversation, question: Question, score: QuestionScore
) -> dict[str, Any]:
    """Where each evidence turn tiered-memory did not send was: its session (the last one lives
    in the window and summary) and its rank in recall(k=25) (None: below 25)."""
    turns = {t.dia_id: t for t in conversation.turns}
    last = max(conversation.sessions)
    lost = [d for d, w in zip(question.evidence, score.evidence_where, strict=True) if w == MISSING]
    if not lost:
        return {"lost": []}
    ranked = [collapse(h.text) for h in memory.recall(question.question, DIAGNOSIS_K)]
    rows = []
    for dia_id in lost:
        text = collapse(turns[dia_id].text)
        rank = next((i + 1 for i, hit in enumerate(ranked) if hit == text), None)
        rows.append(
            {
                "dia_id": dia_id,
                "session": "last" if turns[dia_id].session == last else "earlier",
                "recall_rank": rank,
            }
        )
    return {"lost": rows}


def lost_tier(row: dict[str, Any]) -> str:
    """Which tier lost an evidence turn: recall ranking (stored, ranked below 5), or, for a turn
    of the last session that recall does not reach in 25, window + summary (evicted and not
    summarized verbatim), or recall (an earlier session, not in the top 25)."""
    if row["recall_rank"] is not None:
        return "recall-ranking (rank 6-25)"
    if row["session"] == "last":
        return "window+summary (last session, evicted, not kept verbatim)"
    return "recall-ranking (not in top 25)"


def evaluate_system(
    factory: AvailabilityFactory,
    conversations: Sequence[Conversation],
    questions: dict[str, list[Question]],
    budgets: Budgets,
    embedder: CachingEmbedder,
    workdir: Path,
    label: str,
) -> list[Asked]:
    rows: list[Asked] = []
    for conversation in conversations:
        asked = questions[conversation.sample_id]
        if not asked:
            continue
        folder = workdir / conversation.sample_id
        folder.mkdir(parents=True, exist_ok=True)
        memory = factory(budgets, folder, conversation.sample_id, embedder)
        try:
            replay_conversation(memory, conversation, label)
            turns = {t.dia_id: t for t in conversation.turns}
            for index, question in enumerate(asked):
                if isinstance(memory, TieredReplay):
                    memory.asked_at = question.asked_at if memory.dated else None
                built = memory.build(question.question)
                evidence = [turns[d].text for d in question.evidence]
                score = score_prompt(built, question.answer, evidence)
                diagnosis = (
                    diagnose_tiered(memory, conversation, question, score)
                    if isinstance(memory, TieredReplay)
                    else None
                )
                rows.append(Asked(question, index, score, diagnosis))
        finally:
            memory.close()
    return rows


def summarize_rows(rows: Sequence[Asked]) -> dict[str, Any]:
    where = Counter(w for r in rows for w in r.score.evidence_where)
    return {
        "answer_hit": round(mean([float(r.score.answer_hit) for r in rows]), 4),
        "evidence_coverage": round(mean([r.score.evidence_coverage for r in rows]), 4),
        "mean_prompt_tokens": round(mean([float(r.score.prompt_tokens) for r in rows]), 1),
        "max_prompt_tokens": max((r.score.prompt_tokens for r in rows), default=0),
        "questions": len(rows),
        "evidence_where": {tier: where.get(tier, 0) for tier in (*TIERS, MISSING)},
        "answer_in": {tier: sum(1 for r in rows if tier in r.score.answer_in) for tier in TIERS},
    }


def run_availability(
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    systems: Sequence[str],
    budgets: Budgets,
    limit_questions: int | None = None,
    dataset: str = "",
    factories: dict[str, tuple[AvailabilityFactory, str]] | None = None,
) -> dict[str, Any]:
    """Replay, ask, score every system on the same questions; failures land in ``skipped``."""
    registry = factories or AVAILABILITY_SYSTEMS
    questions = {c.sample_id: scored_questions(c, limit_questions) for c in conversations}
    total = sum(len(q) for q in questions.values())
    kind = conversations[0].dataset if conversations else ""
    note(
        f"answer-availability: {kind}, {len(conversations)} conversations, {total} questions, "
        f"embedder {embedder.name}"
    )
    embedder.warm((t.text for c in conversations for t in c.turns), "embedding turns")
    out: dict[str, Any] = {
        "dataset": dataset,
        "format": kind,
        "questions": total,
        "conversations": [c.sample_id for c in conversations],
        "budgets": {
            "window_tokens": budgets.window_tokens,
            "summary_tokens": budgets.summary_tokens,
            "recall_k": RECALL_K,
        },
        "embedder": embedder.name,
        "summarizer": "ExtractiveSummarizer (offline, shared)",
        "notes": (
            "Replay as a chat (user = speaker_a / LongMemEval user); every question asked after "
            "the last turn, in the last session. prompt tokens: context + question (+ the recall "
            "tool's answer for tiered-memory), core counter for gpt-4o-mini. answer_hit: the "
            "normalized gold answer on word boundaries in the prompt text minus the question; "
            "evidence_coverage: evidence turns present verbatim. answer_hit_vs_full = answer_hit "
            "/ full history's. Per-question rows carry ids and scores only (no dataset text)."
        ),
        "systems": {},
        "by_category": {},
        "per_question": {},
        "skipped": {},
    }
    all_rows: dict[str, list[Asked]] = {}
    for name, factory in runnable_systems(systems, registry, out["skipped"]):
        note(f"[{name}]")
        try:
            with tempfile.TemporaryDirectory(prefix=f"bench-avail-{name}-") as tmp:
                rows = evaluate_system(
                    factory, conversations, questions, budgets, embedder, Path(tmp), name
                )
        except Exception as exc:  # a peer that fails is recorded, never dropped silently
            traceback.print_exc()
            out["skipped"][name] = f"failed: {type(exc).__name__}: {exc}"
            note(f"SKIPPED {name}: {out['skipped'][name]}")
            continue
        all_rows[name] = rows
        out["systems"][name] = summarize_rows(rows)
        out["by_category"][name] = {
            str(category): {"name": names, **summarize_rows(group)}
            for category, names, group in _categories(rows)
        }
        out["per_question"][name] = [_record(r) for r in rows]
    add_ratios(out, all_rows)
    return out


def _categories(rows: Sequence[Asked]) -> list[tuple[int, str, list[Asked]]]:
    found = sorted({(r.question.category, r.question.category_name) for r in rows})
    return [(c, n, [r for r in rows if r.question.category == c]) for c, n in found]


def _record(row: Asked) -> dict[str, Any]:
    record: dict[str, Any] = {
        "sample_id": row.question.sample_id,
        "question_index": row.index,
        "category": row.question.category,
        "answer_hit": row.score.answer_hit,
        "answer_in": list(row.score.answer_in),
        "evidence_coverage": round(row.score.evidence_coverage, 4),
        "evidence_where": list(row.score.evidence_where),
        "prompt_tokens": row.score.prompt_tokens,
    }
    if row.diagnosis is not None:
        record["lost_evidence"] = row.diagnosis["lost"]
    return record


def add_ratios(out: dict[str, Any], rows: dict[str, list[Asked]]) -> None:
    """answer_hit_vs_full, token reduction, the tiered-memory goals; print the table."""
    systems = out["systems"]
    full = systems.get("full-history")
    full_hits = [r.score.answer_hit for r in rows.get("full-history", [])]
    for name, row in systems.items():
        if full is None:
            row["answer_hit_vs_full"] = None
            row["prompt_reduction_vs_full"] = None
        else:
            row["answer_hit_vs_full"] = (
                round(row["answer_hit"] / full["answer_hit"], 4) if full["answer_hit"] else None
            )
            row["prompt_reduction_vs_full"] = (
                round(full["mean_prompt_tokens"] / row["mean_prompt_tokens"], 2)
                if row["mean_prompt_tokens"]
                else None
            )
            mine = [r.score.answer_hit for r in rows[name]]
            kept = [m for m, f in zip(mine, full_hits, strict=True) if f]
            row["answer_hit_where_full_hits"] = round(mean([float(k) for k in kept]), 4)
        note(
            f"  {name:<26} answer hit {row['answer_hit']:.3f} "
            f"(vs full {row['answer_hit_vs_full'] if row['answer_hit_vs_full'] is not None else '-'})"
            f"  coverage {row['evidence_coverage']:.3f}  mean prompt {row['mean_prompt_tokens']:>9,.0f}"
            f"  (x{row['prompt_reduction_vs_full'] or '-'} fewer)"
        )
    tiered = systems.get("tiered-memory")
    if tiered is not None and "tiered-memory" in rows:
        lost = Counter(
            lost_tier(item)
            for r in rows["tiered-memory"]
            for item in (r.diagnosis or {}).get("lost", [])
        )
        tiered["lost_evidence"] = dict(sorted(lost.items()))
        peers = {n: r for n, r in systems.items() if n not in ("full-history", "tiered-memory")}
        goals = {
            "answer_hit_vs_full_at_least_0.85": (tiered["answer_hit_vs_full"] or 0) >= 0.85,
            "prompt_tokens_10x_below_full": (tiered["prompt_reduction_vs_full"] or 0) >= 10,
            "more_answer_hits_than_every_peer": all(
                tiered["answer_hit"] > p["answer_hit"] for p in peers.values()
            ),
        }
        out["goals"] = {"tiered-memory": goals}
        for goal, ok in goals.items():
            note(f"  goal {goal}: {'PASS' if ok else 'FAIL'}")


def plot_availability(result: dict[str, Any], path: Path) -> None:
    """Answer hit (y) against mean prompt tokens (x, log) per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    markers = "osD^vP*X"
    for i, (name, row) in enumerate(result["systems"].items()):
        ax.scatter(
            row["mean_prompt_tokens"],
            row["answer_hit"],
            s=55,
            marker=markers[i % len(markers)],
            label=f"{name}: hit {row['answer_hit']:.3f}, coverage {row['evidence_coverage']:.2f}, "
            f"{row['mean_prompt_tokens']:,.0f} tokens",
        )
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean prompt tokens per question (log)")
    ax.set_ylabel("answer hit (normalized gold answer in the prompt)")
    ax.set_title(
        f"Answer availability: {result.get('format', '')}, {result['questions']} questions"
    )
    ax.grid(True, which="both", linewidth=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    note(f"wrote {path}")


__all__ = ["AVAILABILITY_SYSTEMS", "plot_availability", "run_availability"]
