"""``tiered-memory bench summarizer``: how much the offline summarizer compresses, and what it keeps.

Each conversation (a LoCoMo sample, or a LongMemEval question's haystack) is replayed through a
summarizer the way the memory compacts: its turns, in order, in batches of at most
``--batch-tokens`` message tokens, each batch one ``SummaryRequest`` extending the previous summary
within ``--summary-tokens``; a summary still over budget is condensed (a request with no messages)
and then cut to the budget, as ``summary.compaction.apply_step`` does. Every turn is summarized
(no window is kept back), so the final summary is what the summary alone knows when the questions
are asked (all questions of both datasets come after the whole conversation).

Reported per summarizer:

* ``compression``: summarized message tokens / final summary tokens, summed over conversations,
  once with the memory's budget and once ``unbounded`` (a budget no summary reaches: what the
  summarizer itself writes, before any budget drops lines);
* ``answer_hits``: scored questions whose gold answer occurs in the final summary (the answer
  hit of :mod:`.answer_metric`: casefolded, punctuation and articles dropped, number words as
  digits, on word boundaries). Scored: LoCoMo categories 1-4, LongMemEval non-abstention.

``baseline`` is the extractive summarizer as it was before issue 15 (verbatim ``- Speaker:
sentence`` lines), kept here only as the yardstick; ``extractive`` is the core's current one;
``llamacpp`` is :class:`~tiered_memory.summary.LlamaCppSummarizer` on the GGUF file of ``--gguf``
(the ``local`` extra), for which the speed is reported too: prompt and generated tokens per
second (llama.cpp's own timings), seconds per summarizer call and the process's peak RSS.
``--max-turns`` replays only the first turns of each conversation (a local model needs minutes
per batch); then only questions whose evidence lies within those turns are scored.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tiered_memory import ExtractiveSummarizer, Message, Summarizer, SummaryRequest
from tiered_memory.summary.extractive import fact_score
from tiered_memory.tokens import TokenCounter

from .answer_metric import contains_answer, normalize_answer
from .common import RESULTS_DIR, counter, note, progress
from .locomo import Conversation, Question, is_scored

UNBOUNDED = 10**9
SUMMARIZERS = ("baseline", "extractive", "llamacpp")
MODES = ("budgeted", "unbounded")

_BASELINE_SPLIT = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+|\n+")


class BaselineExtractiveSummarizer:
    """The extractive summarizer before issue 15 (git 08b18fe), verbatim: fact-bearing sentences
    as ``- Speaker: sentence`` lines, appended; over budget the lowest-scoring lines go first."""

    def __init__(self, min_score: float = 1.0, max_sentence_tokens: int = 80) -> None:
        self.counter = counter()
        self.min_score = min_score
        self.max_sentence_tokens = max_sentence_tokens
        self._costs: dict[str, int] = {}

    def summarize(self, request: SummaryRequest) -> str:
        lines = [self._parse_line(line) for line in request.previous_summary.splitlines()]
        lines = [line for line in lines if line[0]]
        seen = {line[0] for line in lines}
        for message in request.messages:
            if message.role == "tool":
                continue
            speaker = message.name or message.role.capitalize()
            for sentence in _BASELINE_SPLIT.split(message.content):
                sentence = " ".join(sentence.split())
                score = fact_score(sentence)
                if message.role == "user":
                    score *= 1.25
                if score < self.min_score:
                    continue
                limit = min(self.max_sentence_tokens, max(8, request.max_tokens // 3))
                sentence = self.counter.truncate(sentence, limit)
                text = f"- {speaker}: {sentence}"
                if text not in seen:
                    seen.add(text)
                    lines.append((text, score))
            for call in message.tool_calls:
                text = f"- {speaker} used tool {call.name}."
                if text not in seen:
                    seen.add(text)
                    lines.append((text, 0.5 + self.min_score))
        return self._fit(lines, request.max_tokens)

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)

    def _parse_line(self, raw: str) -> tuple[str, float]:
        text = raw.strip()
        if not text:
            return ("", 0.0)
        if not text.startswith("- "):
            text = f"- {text}"
        return (text, fact_score(text.split(": ", 1)[-1]))

    def _cost(self, line: str) -> int:
        # Memoized (the original counted every line on every call): same output, less time.
        cost = self._costs.get(line)
        if cost is None:
            if len(self._costs) > 200_000:
                self._costs.clear()
            cost = self._costs[line] = self.counter.count_text(line) + 1
        return cost

    def _fit(self, lines: list[tuple[str, float]], max_tokens: int) -> str:
        costs = [self._cost(line[0]) for line in lines]
        total = sum(costs)
        keep = [True] * len(lines)
        for index in sorted(range(len(lines)), key=lambda i: (lines[i][1], i)):
            if total <= max_tokens:
                break
            keep[index] = False
            total -= costs[index]
        return "\n".join(line[0] for line, kept in zip(lines, keep, strict=True) if kept)


def make_summarizer(name: str, gguf: str | None = None, gguf_threads: int = 1) -> Summarizer:
    if name == "baseline":
        return BaselineExtractiveSummarizer()
    if name == "extractive":
        return ExtractiveSummarizer()
    if name == "llamacpp":
        if not gguf:
            raise ValueError("the llamacpp summarizer needs --gguf PATH (a GGUF chat model)")
        from tiered_memory.summary import LlamaCppSummarizer

        return TimedSummarizer(
            LlamaCppSummarizer(model_path=gguf, n_threads=gguf_threads, timeout=3600)
        )
    raise ValueError(f"unknown summarizer {name!r}: expected one of {SUMMARIZERS}")


class TimedSummarizer:
    """Records each call's wall time and the inner summarizer's ``last_timings`` (llama.cpp)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[dict[str, float]] = []

    def summarize(self, request: SummaryRequest) -> str:
        started = time.perf_counter()
        try:
            return str(self.inner.summarize(request))
        finally:
            timings = getattr(self.inner, "last_timings", {}) or {}
            self.inner.last_timings = {}
            self.calls.append(
                {
                    "seconds": time.perf_counter() - started,
                    "messages": len(request.messages),
                    **{
                        key: float(timings[key])
                        for key in ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms")
                        if isinstance(timings.get(key), (int, float))
                    },
                }
            )

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)

    def speed(self) -> dict[str, Any]:
        """Totals over the calls: tokens per second, seconds per call, peak RSS."""
        calls = self.calls
        if not calls:
            return {}

        def total(key: str) -> float:
            return sum(call.get(key, 0.0) for call in calls)

        seconds = [call["seconds"] for call in calls]
        return {
            "calls": len(calls),
            "prompt_tokens": int(total("prompt_n")),
            "generated_tokens": int(total("predicted_n")),
            "prompt_tokens_per_second": round(1000 * total("prompt_n") / total("prompt_ms"), 2)
            if total("prompt_ms")
            else None,
            "generated_tokens_per_second": round(
                1000 * total("predicted_n") / total("predicted_ms"), 2
            )
            if total("predicted_ms")
            else None,
            "seconds_per_call_mean": round(statistics.fmean(seconds), 1),
            "seconds_per_call_max": round(max(seconds), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }


def answer_in(summary: str, answer: str) -> bool:
    """The benchmarks' answer hit (:mod:`.answer_metric`): the normalized gold answer occurs on
    word boundaries in the normalized summary."""
    return contains_answer(normalize_answer(summary), answer)


def conversation_messages(
    conversation: Conversation, max_turns: int | None = None
) -> list[Message]:
    return [
        Message(
            role=turn.chat_role,  # type: ignore[arg-type]
            content=turn.text,
            name=turn.speaker if conversation.dataset == "locomo" else None,
            created_at=turn.created_at,
        )
        for turn in conversation.turns[:max_turns]
    ]


def scored_within(
    conversation: Conversation, max_turns: int | None, limit: int | None
) -> list[Question]:
    """The scored questions; with ``max_turns``, only those whose evidence is all replayed."""
    scored = [q for q in conversation.questions if is_scored(conversation, q)]
    if max_turns is not None:
        kept = {turn.dia_id for turn in conversation.turns[:max_turns]}
        scored = [q for q in scored if q.evidence and set(q.evidence) <= kept]
    return scored[:limit] if limit else scored


@dataclass
class ReplayResult:
    summary: str
    summarized_tokens: int
    summary_tokens: int
    calls: int
    seconds: float


def replay(
    summarizer: Summarizer,
    messages: Sequence[Message],
    summary_tokens: int,
    batch_tokens: int,
    tokens: TokenCounter,
) -> ReplayResult:
    """Feed ``messages`` through ``summarizer`` in batches, as the memory's compaction does."""
    summary = ""
    calls = 0
    summarized = 0
    seconds = 0.0

    def call(request: SummaryRequest) -> str:
        nonlocal calls, seconds
        started = time.perf_counter()
        answer = (summarizer.summarize(request) or "").strip()
        seconds += time.perf_counter() - started
        calls += 1
        return answer

    batch: list[Message] = []
    size = 0
    for index, message in enumerate(messages):
        cost = tokens.count_message(message)
        summarized += tokens.count_text(message.content)
        batch.append(message)
        size += cost
        if size < batch_tokens and index + 1 < len(messages):
            continue
        summary = call(SummaryRequest(summary, tuple(batch), summary_tokens))
        batch, size = [], 0
        if tokens.count_text(summary) > summary_tokens:
            summary = call(SummaryRequest(summary, (), summary_tokens))
            if tokens.count_text(summary) > summary_tokens:
                summary = tokens.truncate(summary, summary_tokens).rstrip()
    return ReplayResult(summary, summarized, tokens.count_text(summary), calls, seconds)


def evaluate(
    conversations: Sequence[Conversation],
    summarizer_names: Sequence[str],
    summary_tokens: int = 500,
    batch_tokens: int = 4000,
    limit_questions: int | None = None,
    factory: Callable[[str], Summarizer] = make_summarizer,
    modes: Sequence[str] = MODES,
    max_turns: int | None = None,
) -> dict[str, Any]:
    """Compression and summary-only answer hits of each summarizer, budgeted and unbounded."""
    tokens = counter()
    results: dict[str, Any] = {}
    for name in summarizer_names:
        summarizer = factory(name)
        row: dict[str, Any] = {}
        for mode in modes:
            budget = summary_tokens if mode == "budgeted" else UNBOUNDED
            summarized = written = hits = questions = calls = 0
            seconds = 0.0
            for conversation in progress(conversations, f"{name} {mode}"):
                messages = conversation_messages(conversation, max_turns)
                result = replay(summarizer, messages, budget, batch_tokens, tokens)
                scored = scored_within(conversation, max_turns, limit_questions)
                summarized += result.summarized_tokens
                written += result.summary_tokens
                calls += result.calls
                seconds += result.seconds
                questions += len(scored)
                hits += sum(answer_in(result.summary, q.answer) for q in scored)
            row[mode] = {
                "summarized_tokens": summarized,
                "summary_tokens": written,
                "compression": round(summarized / written, 2) if written else None,
                "answer_hits": hits,
                "questions": questions,
                "summarizer_calls": calls,
                "summarizer_seconds": round(seconds, 2),
            }
            if isinstance(summarizer, TimedSummarizer):
                row[mode]["speed"] = summarizer.speed()
                row[mode]["last_summary"] = result.summary
                summarizer.calls.clear()
        results[name] = row
    return {
        "conversations": len(conversations),
        "summary_tokens": summary_tokens,
        "batch_tokens": batch_tokens,
        "max_turns": max_turns,
        "summarizers": results,
    }


def add_summarizer_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "summarizer",
        parents=[common],
        help="offline summarizer: compression and summary-only answer hits, before/after",
    )
    parser.add_argument(
        "--summarizers",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=["baseline", "extractive"],
        help=f"comma list of {', '.join(SUMMARIZERS)} (default: baseline,extractive)",
    )
    parser.add_argument(
        "--summary-tokens", type=int, default=500, help="the Tier-2 budget (MemoryConfig default)"
    )
    parser.add_argument(
        "--modes",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=list(MODES),
        help="budgeted (the Tier-2 budget), unbounded (what the summarizer writes); both by default",
    )
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=4000,
        help="message tokens per summarizer call (MemoryConfig.summarizer_batch_tokens)",
    )
    parser.add_argument(
        "--max-turns",
        type=int,
        default=None,
        help="replay only the first N turns of each conversation (score only questions within)",
    )
    parser.add_argument("--gguf", default=None, help="GGUF chat model for --summarizers llamacpp")
    parser.add_argument(
        "--gguf-threads", type=int, default=1, help="llama.cpp threads (1 on a busy machine)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from .datasets import dataset_name, load_conversations

    conversations = load_conversations(args.data, args.limit_conversations)
    result = evaluate(
        conversations,
        args.summarizers,
        summary_tokens=args.summary_tokens,
        batch_tokens=args.batch_tokens,
        limit_questions=args.limit_questions,
        modes=args.modes,
        factory=lambda name: make_summarizer(name, args.gguf, args.gguf_threads),
        max_turns=args.max_turns,
    )
    return {"dataset": dataset_name(conversations), "data": str(args.data), **result}


def run_command(args: argparse.Namespace, finish: Callable[..., int]) -> int:
    """``tiered-memory bench summarizer``: writes ``bench/results/summarizer-<dataset>.json``."""
    unknown = [name for name in args.summarizers if name not in SUMMARIZERS] + [
        mode for mode in args.modes if mode not in MODES
    ]
    if unknown:
        note(f"error: unknown {unknown}: summarizers {SUMMARIZERS}, modes {MODES}")
        return 2
    if "llamacpp" in args.summarizers and not args.gguf:
        note("error: --summarizers llamacpp needs --gguf PATH (a GGUF chat model file)")
        return 2
    result = run(args)
    if args.json_out is None:
        args.json_out = str(RESULTS_DIR / f"summarizer-{result['dataset']}.json")
    for name, row in result["summarizers"].items():
        for mode, cell in row.items():
            note(
                f"{result['dataset']} {name:>10} {mode:>9}: compression {cell['compression']}x, "
                f"answer hits {cell['answer_hits']}/{cell['questions']}"
                + (f", speed {cell['speed']}" if cell.get("speed") else "")
            )
    return finish(args, result, None)


__all__ = [
    "BaselineExtractiveSummarizer",
    "TimedSummarizer",
    "add_summarizer_parser",
    "answer_in",
    "evaluate",
    "replay",
    "run",
    "run_command",
]
