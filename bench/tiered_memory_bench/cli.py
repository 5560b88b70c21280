"""Command line of the benchmarks: ``tiered-memory bench <command>`` or ``python -m tiered_memory_bench``.

Commands: ``retrieval`` (alias ``locomo-retrieval``), ``token-cost``, ``overhead``, ``scale``,
``answer-availability``, ``locomo-qa``. Each reads LoCoMo or LongMemEval (detected) from
``--data`` and writes ``bench/results/<command>.json`` (or ``--json OUT``, ``-`` for stdout)
and, except locomo-qa, a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import dump_json, embedder_kind, note, output_path, plot_path, write_json
from .datasets import DataError, load_conversations
from .locomo import DEFAULT_DATA, Conversation

RETRIEVAL_SYSTEMS = ("tiered-memory", "bm25", "chroma-dense", "llamaindex-vector-block", "mem0")
TOKEN_COST_SYSTEMS = (
    "full-history",
    "tiered-memory",
    "tiered-memory-background",
    "langchain-summarization",
    "llamaindex-memory",
    "llamaindex-chat-summary",
    "seed-policy",
)
OVERHEAD_SYSTEMS = ("tiered-memory", "llamaindex-memory", "llamaindex-vector-block", "mem0")
#: old command name -> the dataset-neutral one
ALIASES = {"locomo-retrieval": "retrieval"}


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--sizes: comma-separated integers, got {text!r}"
        ) from exc
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("--sizes: positive integers")
    return sizes


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser(prog: str = "tiered-memory bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help=f"LoCoMo or LongMemEval JSON, detected (default: {DEFAULT_DATA}, relative to the cwd)",
    )
    common.add_argument(
        "--json",
        dest="json_out",
        metavar="OUT",
        help="result file (default bench/results/<command>.json; - = stdout)",
    )
    common.add_argument("--limit-conversations", type=_positive, metavar="N")
    common.add_argument(
        "--limit-questions",
        type=_positive,
        metavar="N",
        help="at most N questions per conversation (LongMemEval: one question per "
        "conversation; --limit-conversations N takes N questions stratified by type)",
    )
    common.add_argument(
        "--skip-conversations",
        type=_positive,
        metavar="N",
        help="leave out the first N of the selection: --skip-conversations 12 "
        "--limit-conversations 12 is the next 12 (a second split to confirm on)",
    )
    common.add_argument("--no-plot", action="store_true", help="skip the PNG")
    common.add_argument(
        "--question-types",
        type=_csv,
        default=None,
        metavar="T1,T2",
        help="only questions of these types (LongMemEval: e.g. knowledge-update,"
        "temporal-reasoning), chosen before --limit-conversations",
    )
    cached = argparse.ArgumentParser(add_help=False)
    cached.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="embedding cache folder (default $TIERED_MEMORY_BENCH_CACHE or "
        "~/.cache/tiered-memory-bench)",
    )
    cached.add_argument("--no-cache", action="store_true", help="embed everything in this run")

    retrieval = commands.add_parser(
        "retrieval",
        aliases=["locomo-retrieval"],
        parents=[common, cached],
        help="evidence Recall@k / nDCG@10 (LongMemEval: + session recall_any@k) vs peers",
    )
    retrieval.add_argument(
        "--systems",
        type=_csv,
        default=list(RETRIEVAL_SYSTEMS),
        help="comma list; also: tiered-memory-named, and the ablations tm-dense-only, "
        "tm-bm25-only, tm-fusion, tm-fusion+neighbours, tm-replies-lifted",
    )
    retrieval.add_argument(
        "--embedder",
        type=embedder_kind,
        default="default",
        help="default: the core's MiniLM (all systems share it); hash: no semantics; "
        "onnx:PATH: another ONNX export with MiniLM's tokenizer; "
        "sentence-transformers:PATH: that model (needs sentence-transformers and torch)",
    )

    tokens = commands.add_parser(
        "token-cost",
        parents=[common],
        help="prompt tokens per turn and summarizer input per system",
    )
    tokens.add_argument("--systems", type=_csv, default=list(TOKEN_COST_SYSTEMS))
    tokens.add_argument("--window-tokens", type=_positive, default=2000)
    tokens.add_argument("--summary-tokens", type=_positive, default=500)
    tokens.add_argument(
        "--summary-output-tokens",
        type=_positive,
        default=250,
        help="fixed length of the fake summarizers' output",
    )
    tokens.add_argument(
        "--evict-to",
        type=float,
        default=None,
        help="low watermark of tiered-memory and LangChain's keep (default: MemoryConfig's)",
    )

    overhead = commands.add_parser(
        "overhead", parents=[common], help="add+context and recall latency, peak RSS"
    )
    overhead.add_argument("--systems", type=_csv, default=list(OVERHEAD_SYSTEMS))
    overhead.add_argument(
        "--sizes",
        type=_sizes,
        default=[1000, 10000],
        help="stored memories for recall latency (100000 is slow to build)",
    )
    overhead.add_argument("--queries", type=_positive, default=200)
    overhead.add_argument(
        "--no-isolate",
        action="store_true",
        help="measure in this process (peak RSS is then cumulative)",
    )

    scale = commands.add_parser(
        "scale",
        help="one store of many users: cold recall per user in a fresh process, peak RSS, "
        "forget across processes, recall at one user's 100k memories",
    )
    scale.add_argument("--users", type=_positive, default=1000)
    scale.add_argument("--messages", type=_positive, default=1000, help="per user")
    scale.add_argument(
        "--recall-users", type=_positive, default=None, help="users recalled (default: all)"
    )
    scale.add_argument(
        "--big-user", type=int, default=100_000, help="memories of the one big user (0: skip)"
    )
    scale.add_argument("--workdir", type=Path, default=None, help="where the temp store goes")
    scale.add_argument(
        "--store",
        type=Path,
        default=None,
        help="build the store once in this directory and reuse it on later runs of the same sizes",
    )
    scale.add_argument(
        "--json",
        dest="json_out",
        metavar="OUT",
        help="result file (default bench/results/scale.json; - = stdout)",
    )

    availability = commands.add_parser(
        "answer-availability",
        parents=[common, cached],
        help="is the gold answer in the prompt each memory builds, at what token cost",
    )
    availability.add_argument(
        "--systems", type=_csv, default=None, help="comma list (default: all)"
    )
    availability.add_argument("--window-tokens", type=_positive, default=2000)
    availability.add_argument("--summary-tokens", type=_positive, default=500)
    availability.add_argument(
        "--embedder",
        type=embedder_kind,
        default="default",
        help="default: the core's MiniLM (all systems share it); hash: no semantics; "
        "onnx:PATH: another ONNX export with MiniLM's tokenizer; "
        "sentence-transformers:PATH: that model (needs sentence-transformers and torch)",
    )

    qa = commands.add_parser(
        "locomo-qa",
        parents=[common, cached],
        help="end-to-end QA with an LLM judge, LoCoMo or LongMemEval (needs OPENAI_API_KEY)",
    )
    qa.add_argument("--answer-model", default="gpt-4o-mini")
    qa.add_argument("--judge-model", default="gpt-4o-mini")
    qa.add_argument("--recall-k", type=_positive, default=10)
    from .latency import add_latency_parser

    add_latency_parser(commands, common)
    from .summarizer_eval import add_summarizer_parser

    add_summarizer_parser(commands, common)
    from .secrets import add_secrets_parser

    add_secrets_parser(commands, common)
    from .facts_bench import add_facts_parser

    add_facts_parser(commands, common)
    from .throughput import add_throughput_parsers

    add_throughput_parsers(commands)
    return parser


def _load(args: argparse.Namespace) -> list[Conversation]:
    types = getattr(args, "question_types", None)
    skip = getattr(args, "skip_conversations", None) or 0
    limit = args.limit_conversations + skip if args.limit_conversations else None
    conversations = load_conversations(args.data, None if types else limit)
    if types:
        for conversation in conversations:
            conversation.questions = [q for q in conversation.questions if q.category_name in types]
        conversations = _round_robin([c for c in conversations if c.questions], limit)
    conversations = conversations[skip:]
    args.dataset_kind = conversations[0].dataset if conversations else "locomo"
    dropped = sum(c.dropped_evidence for c in conversations)
    if dropped:
        note(f"note: {dropped} malformed or unknown evidence ids in the dataset were ignored")
    return conversations


def _round_robin(conversations: list[Conversation], limit: int | None) -> list[Conversation]:
    """At most ``limit``, taken in turn from each question type."""
    if not limit:
        return conversations
    by_type: dict[str, list[Conversation]] = {}
    for c in conversations:
        by_type.setdefault(c.questions[0].category_name, []).append(c)
    queues = list(by_type.values())
    chosen: list[Conversation] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def result_name(command: str, dataset: str) -> str:
    """The default result file stem: the LoCoMo names of before, a dataset suffix otherwise."""
    if command == "retrieval":
        return f"{dataset}-retrieval"
    if command == "answer-availability" or dataset != "locomo":
        return f"{command}-{dataset}"
    return command


def _finish(
    args: argparse.Namespace,
    result: dict[str, Any],
    plot: Callable[[dict[str, Any], Path], None] | None,
) -> int:
    name = result_name(args.command, getattr(args, "dataset_kind", "locomo"))
    if args.json_out == "-":
        print(dump_json(result))
        path = output_path(name, None)
    else:
        path = output_path(name, args.json_out)
        write_json(result, path)
    if plot is not None and not args.no_plot and result.get("systems"):
        plot(result, plot_path(path))
    for name, reason in result.get("skipped", {}).items():
        note(f"skipped {name}: {reason}")
    return 0


def _embedding_cache(args: argparse.Namespace) -> Path | None:
    from .embedding_cache import cache_dir

    return None if args.no_cache else cache_dir(args.cache_dir)


def _retrieval(args: argparse.Namespace) -> int:
    from .common import benchmark_embedder
    from .retrieval import plot_retrieval, run_retrieval

    result = run_retrieval(
        _load(args),
        benchmark_embedder(args.embedder, _embedding_cache(args)),
        args.systems,
        limit_questions=args.limit_questions,
        dataset=str(args.data),
    )
    return _finish(args, result, plot_retrieval)


def _token_cost(args: argparse.Namespace) -> int:
    from .chat_memories import Budgets
    from .token_cost import plot_token_cost, run_token_cost

    budgets = Budgets(
        window_tokens=args.window_tokens,
        summary_tokens=args.summary_tokens,
        summary_output_tokens=args.summary_output_tokens,
        **({} if args.evict_to is None else {"evict_to": args.evict_to}),
    )
    result = run_token_cost(_load(args), args.systems, budgets, dataset=str(args.data))
    return _finish(args, result, plot_token_cost)


def _overhead(args: argparse.Namespace) -> int:
    from .overhead import plot_overhead, run_overhead

    result = run_overhead(
        _load(args),
        args.sizes,
        args.systems,
        queries=args.queries,
        isolate=not args.no_isolate,
        dataset=str(args.data),
    )
    return _finish(args, result, plot_overhead)


def _scale(args: argparse.Namespace) -> int:
    from .scale import run_scale

    result = run_scale(
        args.users, args.messages, args.recall_users, args.big_user, args.workdir, args.store
    )
    return _finish(args, result, None)


def _latency(args: argparse.Namespace) -> int:
    from .latency import run_latency

    result = run_latency(
        _load(args),
        _csv(args.systems),
        _csv(args.latencies),
        hang_seconds=args.hang_seconds,
        timeout=args.summarizer_timeout,
        mem0_turns=args.mem0_turns,
        max_turns=args.max_turns,
        gap_ms=args.gap_ms,
    )
    return _finish(args, result, None)


def _availability(args: argparse.Namespace) -> int:
    from .availability import DEFAULT_SYSTEMS, plot_availability, run_availability
    from .chat_memories import Budgets
    from .common import benchmark_embedder

    result = run_availability(
        _load(args),
        benchmark_embedder(args.embedder, _embedding_cache(args)),
        args.systems or list(DEFAULT_SYSTEMS),
        Budgets(window_tokens=args.window_tokens, summary_tokens=args.summary_tokens),
        limit_questions=args.limit_questions,
        dataset=str(args.data),
    )
    return _finish(args, result, plot_availability)


def _qa(args: argparse.Namespace, answer_model: Any = None, judge_model: Any = None) -> int:
    from .common import benchmark_embedder
    from .qa import run_qa

    summarizer: Any = "extractive"
    if answer_model is None or judge_model is None:
        if not os.environ.get("OPENAI_API_KEY"):
            note(
                "locomo-qa needs an answer model and a judge: set OPENAI_API_KEY (models via "
                "langchain_openai.ChatOpenAI) and run again. Nothing was run."
            )
            return 2
        from langchain_openai import ChatOpenAI

        answer_model = answer_model or ChatOpenAI(model=args.answer_model, temperature=0)
        judge_model = judge_model or ChatOpenAI(model=args.judge_model, temperature=0)
        summarizer = None  # the core default: the OpenAI summarizer when a key is set
    result = run_qa(
        _load(args),
        answer_model,
        judge_model,
        benchmark_embedder(disk_cache=_embedding_cache(args)),
        limit_questions=args.limit_questions,
        recall_k=args.recall_k,
        summarizer=summarizer,
        dataset=str(args.data),
        model_names=(args.answer_model, args.judge_model),
    )
    return _finish(args, result, None)


def main(
    argv: Sequence[str] | None = None, *, answer_model: Any = None, judge_model: Any = None
) -> int:
    """Run one benchmark command; returns the exit code (2: locomo-qa without models)."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    args.command = ALIASES.get(args.command, args.command)
    try:
        if args.command == "retrieval":
            return _retrieval(args)
        if args.command == "answer-availability":
            return _availability(args)
        if args.command == "token-cost":
            return _token_cost(args)
        if args.command == "overhead":
            return _overhead(args)
        if args.command == "scale":
            return _scale(args)
        if args.command == "latency":
            return _latency(args)
        if args.command == "summarizer":
            from .summarizer_eval import run_command

            return run_command(args, _finish)
        if args.command == "secrets":
            from .secrets import run_command as run_secrets_command

            return run_secrets_command(args, _load, _finish)
        if args.command in ("embedding", "import"):
            from .throughput import run_embedding, run_import

            return (run_embedding if args.command == "embedding" else run_import)(args, _finish)
        if args.command == "facts":
            from .facts_bench import run_command as run_facts_command

            return run_facts_command(args, _finish)
        return _qa(args, answer_model, judge_model)
    except (FileNotFoundError, DataError) as exc:
        note(f"error: {exc}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
