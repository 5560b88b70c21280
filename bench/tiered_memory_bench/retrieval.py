"""``retrieval``: evidence Recall@k / nDCG@10 of every retrieval system, LoCoMo or LongMemEval.

On LongMemEval it adds LongMemEval's own session-level metric, ``session_recall_any@k``: whether
any evidence session is among the first k distinct sessions of the ranked turns.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import CachingEmbedder, note, progress, runnable_systems
from .locomo import Conversation, Question, scored_questions
from .metrics import average_rows, ndcg_at_k, percentile, recall_at_k
from .retrievers import RETRIEVERS, RetrieverFactory

RECALL_KS = (1, 5, 10, 25)
NDCG_K = 10
SEARCH_K = max(RECALL_KS)
SESSION_KS = (5, 10)
#: LongMemEval: turns searched so that the ranking usually spans >= 10 distinct sessions
SESSION_SEARCH_K = 100


def session_of(dia_id: str) -> int:
    """The session number of a ``D<session>:<turn>`` id."""
    return int(dia_id[1:].split(":", 1)[0])


def session_recall_any(ranked: Sequence[str], sessions: Sequence[int], k: int) -> float:
    """1.0 if any of ``sessions`` is among the first ``k`` distinct sessions of ``ranked``."""
    if k <= 0:
        raise ValueError("k must be positive")
    order = list(dict.fromkeys(session_of(d) for d in ranked))[:k]
    return 1.0 if set(order) & set(sessions) else 0.0


def score(
    ranked: Sequence[str], evidence: Sequence[str], sessions: Sequence[int] = ()
) -> dict[str, float]:
    """The metric row of one question (``sessions``: LongMemEval's evidence sessions)."""
    row = {f"recall@{k}": recall_at_k(ranked, evidence, k) for k in RECALL_KS}
    row[f"ndcg@{NDCG_K}"] = ndcg_at_k(ranked, evidence, NDCG_K)
    if sessions:
        for k in SESSION_KS:
            row[f"session_recall_any@{k}"] = session_recall_any(ranked, sessions, k)
    return row


def evaluate_system(
    factory: RetrieverFactory,
    conversations: Sequence[Conversation],
    questions: dict[str, list[Question]],
    embedder: CachingEmbedder,
    workdir: Path,
    label: str,
) -> dict[str, Any]:
    """Index each conversation in a fresh system, ask its questions, aggregate the scores."""
    rows: list[tuple[int, dict[str, float]]] = []
    latencies: list[float] = []
    for conversation in conversations:
        asked = questions[conversation.sample_id]
        if not asked:
            continue
        (workdir / conversation.sample_id).mkdir(parents=True, exist_ok=True)
        retriever = factory(workdir / conversation.sample_id, embedder)
        try:
            started = time.perf_counter()
            retriever.index(conversation)
            note(
                f"  {label}: indexed {conversation.sample_id} "
                f"({len(conversation.turns)} turns) in {time.perf_counter() - started:.1f}s"
            )
            for question in progress(asked, f"{label} {conversation.sample_id}"):
                t0 = time.perf_counter()
                depth = SESSION_SEARCH_K if conversation.dataset == "longmemeval" else SEARCH_K
                ask = getattr(retriever, "search_question", None)  # given the question's date
                ranked = ask(question, depth) if ask else retriever.search(question.question, depth)
                latencies.append((time.perf_counter() - t0) * 1000.0)
                sessions = (
                    question.evidence_sessions if conversation.dataset == "longmemeval" else ()
                )
                rows.append((question.category, score(ranked, question.evidence, sessions)))
        finally:
            retriever.close()
    result: dict[str, Any] = {k: round(v, 4) for k, v in average_rows([r for _, r in rows]).items()}
    result["p50_ms"] = round(percentile(latencies, 50), 2)
    result["p95_ms"] = round(percentile(latencies, 95), 2)
    result["by_category"] = {
        str(category): {
            **{
                k: round(v, 4)
                for k, v in average_rows([r for c, r in rows if c == category]).items()
            },
            "questions": sum(1 for c, _ in rows if c == category),
        }
        for category in sorted({c for c, _ in rows})
    }
    return result


def run_retrieval(
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    systems: Sequence[str],
    limit_questions: int | None = None,
    dataset: str = "",
    factories: dict[str, tuple[RetrieverFactory, str]] | None = None,
) -> dict[str, Any]:
    """Evaluate ``systems`` on the same questions; unavailable ones land in ``skipped``."""
    registry = factories or RETRIEVERS
    questions = {c.sample_id: scored_questions(c, limit_questions) for c in conversations}
    total = sum(len(q) for q in questions.values())
    note(
        f"retrieval: {len(conversations)} conversations, {total} questions, "
        f"embedder {embedder.name}"
    )
    embedder.warm((t.document for c in conversations for t in c.turns), "embedding turns")
    kind = conversations[0].dataset if conversations else ""
    out: dict[str, Any] = {
        "dataset": dataset,
        "format": kind,
        "questions": total,
        "systems": {},
        "skipped": {},
    }
    for name, factory in runnable_systems(systems, registry, out["skipped"]):
        note(f"[{name}]")
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            try:
                out["systems"][name] = evaluate_system(
                    factory, conversations, questions, embedder, Path(tmp), name
                )
            except Exception as exc:  # a peer that fails is recorded, never dropped silently
                traceback.print_exc()
                reason = f"failed: {type(exc).__name__}: {exc}"
                out["skipped"][name] = reason
                note(f"SKIPPED {name}: {reason}")
                continue
        row = out["systems"][name]
        note(
            f"  {name}: R@1 {row['recall@1']:.3f}  R@5 {row['recall@5']:.3f}  "
            f"R@10 {row['recall@10']:.3f}  R@25 {row['recall@25']:.3f}  "
            f"nDCG@10 {row['ndcg@10']:.3f}  p50 {row['p50_ms']:.1f} ms  p95 {row['p95_ms']:.1f} ms"
            + "".join(
                f"  sR_any@{k} {row[f'session_recall_any@{k}']:.3f}"
                for k in SESSION_KS
                if f"session_recall_any@{k}" in row
            )
        )
    return out


def plot_retrieval(result: dict[str, Any], path: Path, title: str = "") -> None:
    """Grouped bars: Recall@k per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(result["systems"])
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(systems) + 2), 4.5))
    width = 0.8 / len(RECALL_KS)
    for j, k in enumerate(RECALL_KS):
        values = [result["systems"][s][f"recall@{k}"] for s in systems]
        xs = [i + (j - (len(RECALL_KS) - 1) / 2) * width for i in range(len(systems))]
        bars = ax.bar(xs, values, width, label=f"Recall@{k}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(systems)), systems, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("evidence recall")
    name = "LongMemEval" if result.get("format") == "longmemeval" else "LoCoMo"
    ax.set_title(title or f"{name} evidence retrieval ({result['questions']} questions)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    note(f"wrote {path}")
