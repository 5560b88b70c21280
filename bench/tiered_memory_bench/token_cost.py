"""``token-cost``: prompt tokens per turn and summarizer consumption, per memory system."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiered_memory import Message
from tiered_memory.tokens import REPLY_PRIMING_TOKENS

from .billing import (
    ANTHROPIC_HAIKU,
    CONTEXT_WINDOWS,
    OPENAI,
    PRICE_SOURCES,
    PRICES,
    PRICES_AS_OF,
    SHEETS,
    CacheRule,
    Price,
    PromptBill,
    Sized,
    best_cache_share,
    dollars,
    overflow_turns,
    shared_prefix_of_messages,
)
from .chat_memories import CHAT_MEMORIES, Budgets, ChatMemoryFactory
from .common import count_prompt, counter, note, progress, runnable_systems
from .locomo import Conversation

RULES: dict[str, CacheRule] = {"openai": OPENAI, "anthropic": ANTHROPIC_HAIKU}
DOLLAR_SHEET = "gpt-4o-mini"  # the sheet of the per-conversation plot


class PromptTokenizer:
    """Each message of a prompt as token ids (``<|role|>`` header + content), memoized: what a
    provider's prefix cache compares. Lengths differ from ``count_prompt`` by the per-message
    framing only; caching uses these ids, counts stay the core counter's."""

    def __init__(self) -> None:
        import tiktoken

        self._encoding = tiktoken.get_encoding(counter().encoding_name)
        self._memo: dict[tuple[str, str], tuple[int, ...]] = {}

    def __call__(self, messages: Sequence[dict[str, Any]]) -> list[tuple[int, ...]]:
        out = []
        for message in messages:
            key = (str(message["role"]), str(message.get("content") or ""))
            ids = self._memo.get(key)
            if ids is None:
                text = f"<|{key[0]}|>\n{key[1]}\n"
                ids = tuple(self._encoding.encode(text, disallowed_special=()))
                self._memo[key] = ids
            out.append(ids)
        return out


#: Why a prompt token was not served from the cache (OpenAI rule): the prompt did not extend the
#: previous one (``prefix_break``: the whole prompt is new); it or the prefix it shares is under
#: the 1,024-token minimum (``below_minimum``, the first prompt included); it extends the
#: previous prompt, and the token is new since (``new_tokens``: this turn's message) or lies past
#: the last 128-token step of the shared prefix (``rounding``).
UNCACHED_CAUSES = ("prefix_break", "below_minimum", "new_tokens", "rounding")


@dataclass
class Replay:
    """Per turn: the prompt tokens sent and the summarizer input tokens spent; per cache rule,
    the prompt tokens a provider would serve from its cache; the OpenAI rule's uncached tokens
    by cause; each message's size and the largest summary message (for the layout's bound)."""

    prompt_tokens: list[int] = field(default_factory=list)
    summarizer_input_tokens: list[int] = field(default_factory=list)
    summarizer_calls: int = 0
    prefix_breaks: dict[str, int] = field(
        default_factory=lambda: {"summary": 0, "messages": 0, "below_minimum": 0}
    )
    bills: dict[str, PromptBill] = field(
        default_factory=lambda: {name: PromptBill() for name in RULES}
    )
    uncached: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNCACHED_CAUSES, 0))
    message_sizes: list[Sized] = field(default_factory=list)
    summary_size: Sized | None = None


def replay(
    factory: ChatMemoryFactory,
    conversation: Conversation,
    budgets: Budgets,
    workdir: Path,
    label: str,
) -> Replay:
    """Replay one conversation as a chat (speaker_a as user, speaker_b as assistant)."""
    memory = factory(budgets, workdir, conversation.sample_id)
    out = Replay()
    tokenize = PromptTokenizer()
    previous: list[tuple[int, ...]] | None = None
    previous_prompt: list[dict[str, Any]] = []
    try:
        for turn in progress(conversation.turns, f"{label} {conversation.sample_id}"):
            before = memory.meter.input_tokens
            memory.add(turn.chat_role, turn.text, turn.created_at)
            prompt = memory.prompt()
            tokens = count_prompt(prompt)
            out.prompt_tokens.append(tokens)
            out.summarizer_input_tokens.append(memory.meter.input_tokens - before)
            ids = tokenize(prompt)
            shared = shared_prefix_of_messages(ids, previous)
            length = sum(len(m) for m in ids)
            cause = None
            if previous is not None:
                cause = break_cause(ids, previous, prompt, previous_prompt)
                if cause is not None:
                    out.prefix_breaks[cause] += 1
            if length < OPENAI.min_tokens:
                out.prefix_breaks["below_minimum"] += 1
            record_sizes(out, turn.chat_role, turn.text, prompt, ids, tokenize)
            uncached = tokens - billed_cached(OPENAI, shared, length, tokens)
            if cause is not None:
                out.uncached["prefix_break"] += uncached
            elif length < OPENAI.min_tokens or shared < OPENAI.min_tokens:
                out.uncached["below_minimum"] += uncached
            else:
                rounding = min(uncached, shared - OPENAI.cached_shared(shared, length))
                out.uncached["rounding"] += rounding
                out.uncached["new_tokens"] += uncached - rounding
            for name, rule in RULES.items():
                bill = out.bills[name]
                cached = billed_cached(rule, shared, length, tokens)
                bill.calls += 1
                bill.prompt_tokens += tokens
                bill.cached_tokens += cached
                if rule.writes_billed and length >= rule.min_tokens:
                    bill.written_tokens += tokens - cached
            previous, previous_prompt = ids, prompt
        out.summarizer_calls = memory.meter.calls
    finally:
        memory.close()
    return out


def billed_cached(rule: CacheRule, shared: int, length: int, tokens: int) -> int:
    """Cached tokens of a prompt billed as ``tokens`` (the core's count) whose cache model is
    ``length`` token ids sharing ``shared`` with the previous prompt: the uncached part is what
    the cache model leaves uncached (new tokens + rounding, in ids), the rest of ``tokens`` is
    cached, never more than the rule allows. (The two counts differ by per-message framing, a
    few tokens a message; taking ``min(cached ids, tokens)`` instead would hide the new message
    of a prompt of many short messages inside that difference.)"""
    hit = rule.cached_shared(shared, length)
    return max(0, min(hit, tokens - (length - hit)))


def record_sizes(
    out: Replay,
    role: str,
    text: str,
    prompt: Sequence[dict[str, Any]],
    ids: Sequence[tuple[int, ...]],
    tokenize: PromptTokenizer,
) -> None:
    """The new message's size, and the largest leading system message (the summary) so far."""
    count = counter()
    out.message_sizes.append(
        Sized(
            count.count_message(Message(role=role, content=text)),
            len(tokenize([{"role": role, "content": text}])[0]),
        )
    )
    if prompt and prompt[0].get("role") == "system":
        head = Sized(
            count.count_message(
                Message(role="system", content=str(prompt[0].get("content") or ""))
            ),
            len(ids[0]),
        )
        if out.summary_size is None or head.cache > out.summary_size.cache:
            out.summary_size = head


def break_cause(
    ids: Sequence[tuple[int, ...]],
    previous: Sequence[tuple[int, ...]],
    prompt: Sequence[dict[str, Any]],
    previous_prompt: Sequence[dict[str, Any]],
) -> str | None:
    """Why ``prompt`` does not extend the previous one (None if it does): the first message
    that differs is a system message (``"summary"``: the summary changed, appeared or went) or
    a chat message (``"messages"``: messages were dropped from the start of what is shown)."""
    for index, old in enumerate(previous):
        if index >= len(ids) or ids[index] != old:
            roles = {
                str(m.get("role")) for m in (*prompt[index : index + 1], previous_prompt[index])
            }
            return "summary" if "system" in roles else "messages"
    return None


def conversation_tokens(conversation: Conversation) -> int:
    """Tokens of the whole conversation as one prompt (what full history sends last)."""
    return count_prompt([{"role": t.chat_role, "content": t.text} for t in conversation.turns])


def run_token_cost(
    conversations: Sequence[Conversation],
    systems: Sequence[str],
    budgets: Budgets,
    dataset: str = "",
    factories: dict[str, tuple[ChatMemoryFactory, str]] | None = None,
) -> dict[str, Any]:
    registry = factories or CHAT_MEMORIES
    conv_rows: list[dict[str, Any]] = [
        {"sample_id": c.sample_id, "turns": len(c.turns), "tokens": conversation_tokens(c)}
        for c in conversations
    ]
    total_conversation_tokens = sum(row["tokens"] for row in conv_rows)
    out: dict[str, Any] = {
        "dataset": dataset,
        "format": conversations[0].dataset if conversations else "",
        "budgets": {
            "window_tokens": budgets.window_tokens,
            "summary_tokens": budgets.summary_tokens,
            "summary_output_tokens": budgets.summary_output_tokens,
            "prompt_budget_tokens": budgets.prompt_tokens,
        },
        "notes": (
            "Each turn: add the message, then count (core counter, gpt-4o-mini) the prompt the "
            "memory would send: its context only (no system prompt, no recall hits). speaker_a "
            "is the user, speaker_b the assistant. Summarizers are fakes answering a fixed "
            "summary_output_tokens text; their input is the prompt they are sent "
            "(tiered-memory and seed-policy: build_summary_prompt). tiered-memory uses "
            "HashEmbedder (Tier 3 does not change the context)."
        ),
        "prices": {
            "as_of": PRICES_AS_OF,
            "sources": {
                name: {"status": st, "source": src} for name, (st, src) in PRICE_SOURCES.items()
            },
            "usd_per_million_tokens": {
                name: {
                    "input": p.input,
                    "cached_input": p.cached_input,
                    "cache_write": p.cache_write,
                    "output": p.output,
                    "cache_rule": p.rule.name,
                }
                for name, p in PRICES.items()
            },
            "sheets": {name: {"chat": c, "summarizer": s} for name, (c, s) in SHEETS.items()},
        },
        "conversations": conv_rows,
        "conversation_tokens": total_conversation_tokens,
        "systems": {},
        "per_turn": {},
        "dollars_per_conversation": {},
        "dollar_sheet": DOLLAR_SHEET,
        "skipped": {},
    }
    note(
        f"token-cost: {len(conversations)} conversations, "
        f"{sum(r['turns'] for r in conv_rows)} turns, {total_conversation_tokens} tokens"
    )
    for name, factory in runnable_systems(systems, registry, out["skipped"]):
        total = Replay()
        runs: list[Replay] = []
        try:
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                for conversation in conversations:
                    run = replay(factory, conversation, budgets, Path(tmp), name)
                    runs.append(run)
                    total.prompt_tokens += run.prompt_tokens
                    total.summarizer_input_tokens += run.summarizer_input_tokens
                    total.summarizer_calls += run.summarizer_calls
                    for cause, count in run.prefix_breaks.items():
                        total.prefix_breaks[cause] += count
                    for cause, count in run.uncached.items():
                        total.uncached[cause] += count
        except Exception as exc:  # recorded, never dropped silently
            traceback.print_exc()
            out["skipped"][name] = f"failed: {type(exc).__name__}: {exc}"
            note(f"SKIPPED {name}: {out['skipped'][name]}")
            continue
        out["systems"][name] = {
            "total_prompt_tokens": sum(total.prompt_tokens),
            "max_prompt_tokens": max(total.prompt_tokens, default=0),
            "summarizer_calls": total.summarizer_calls,
            "summarizer_input_tokens": sum(total.summarizer_input_tokens),
            "prefix_breaks": dict(total.prefix_breaks),
            "uncached_tokens_by_cause": dict(total.uncached),
            **billing_row(runs, budgets, cache=True),
        }
        bound = layout_bound(runs, budgets)
        if bound is not None:
            out["systems"][name]["cache_hit_share_bound"] = bound
        out["dollars_per_conversation"][name] = {
            "cached": [
                billing_row([r], budgets, cache=True)["cost_usd"][DOLLAR_SHEET] for r in runs
            ],
            "uncached": [
                billing_row([r], budgets, cache=False)["cost_usd"][DOLLAR_SHEET] for r in runs
            ],
        }
        if name == "full-history":
            out["systems"]["full-history-uncached"] = {
                **out["systems"][name],
                **billing_row(runs, budgets, cache=False),
            }
        out["per_turn"][name] = {
            "prompt_tokens": total.prompt_tokens,
            "summarizer_input_tokens": total.summarizer_input_tokens,
        }
    add_ratios(out)
    return out


def layout_bound(runs: Sequence[Replay], budgets: Budgets) -> float | None:
    """:func:`~tiered_memory_bench.billing.best_cache_share` for a system whose prompts start
    with a summary message (its largest one; None if it never showed one): the highest
    cache-hit share (OpenAI rule) that any choice of cut points could give its layout here."""
    sizes = [r.summary_size for r in runs if r.summary_size is not None]
    if not sizes:
        return None
    summary = max(sizes, key=lambda size: size.cache)
    conversations = [r.message_sizes for r in runs]
    share = best_cache_share(
        conversations, summary, budgets.prompt_tokens, OPENAI, REPLY_PRIMING_TOKENS
    )
    return round(share, 4)


def billing_row(runs: Sequence[Replay], budgets: Budgets, cache: bool) -> dict[str, Any]:
    """Cached tokens (OpenAI rule), dollars per conversation per price sheet, overflows.

    Summarizer output = ``summary_output_tokens`` per call (the fakes' fixed answer); the chat
    model's own output is the same for every system and left out.
    """
    bills = {rule: PromptBill() for rule in RULES}
    for run in runs:
        for rule, bill in run.bills.items():
            total = bills[rule]
            total.calls += bill.calls
            total.prompt_tokens += bill.prompt_tokens
            if cache:
                total.cached_tokens += bill.cached_tokens
                total.written_tokens += bill.written_tokens
    conversations = max(1, len(runs))
    summarizer_in = sum(sum(r.summarizer_input_tokens) for r in runs)
    summarizer_out = sum(r.summarizer_calls for r in runs) * budgets.summary_output_tokens
    cost = {}
    for sheet, (chat, summarizer) in SHEETS.items():
        price = PRICES[chat]
        bill = bills[price.rule.name]
        usd = dollars(bill, price, summarizer_in, summarizer_out, PRICES[summarizer])
        cost[sheet] = round(usd / conversations, 6)
    chat, summarizer = SHEETS[DOLLAR_SHEET]
    terms = cost_terms(bills[PRICES[chat].rule.name], PRICES[chat])
    terms["summarizer_input"] = summarizer_in * PRICES[summarizer].input / 1e6
    terms["summarizer_output"] = summarizer_out * PRICES[summarizer].output / 1e6
    return {
        "cost_terms_usd": {name: round(usd / conversations, 6) for name, usd in terms.items()},
        "cached_prompt_tokens": bills["openai"].cached_tokens,
        "cache_hit_share": round(bills["openai"].cache_hit_share, 4),
        "anthropic_cache_read_tokens": bills["anthropic"].cached_tokens,
        "anthropic_cache_write_tokens": bills["anthropic"].written_tokens,
        "summarizer_output_tokens": summarizer_out,
        "cost_usd": cost,
        "overflow_turns": overflow_turns(
            (t for r in runs for t in r.prompt_tokens), CONTEXT_WINDOWS
        ),
    }


def cost_terms(bill: PromptBill, chat: Price) -> dict[str, float]:
    """The chat model's share of :func:`~tiered_memory_bench.billing.dollars`, by term."""
    write = chat.cache_write if chat.cache_write is not None else chat.input
    return {
        "chat_cached_input": bill.cached_tokens * chat.cached_input / 1e6,
        "chat_uncached_input": (bill.plain_tokens * chat.input + bill.written_tokens * write) / 1e6,
    }


def add_ratios(out: dict[str, Any]) -> None:
    """Ratios vs full history and vs the conversation; goals for tiered-memory; print them."""
    systems = out["systems"]
    conv_tokens = out["conversation_tokens"] or 1
    full = systems.get("full-history", {}).get("total_prompt_tokens")
    for name, row in systems.items():
        row["prompt_reduction_vs_full_history"] = (
            round(full / row["total_prompt_tokens"], 2)
            if full and row["total_prompt_tokens"]
            else None
        )
        row["summarizer_input_vs_conversation"] = round(
            row["summarizer_input_tokens"] / conv_tokens, 3
        )
        reduction = row["prompt_reduction_vs_full_history"]
        note(
            f"  {name:<26} total {row['total_prompt_tokens']:>11,}  max {row['max_prompt_tokens']:>6,}"
            f"  x{reduction if reduction is not None else '-':<7} below full history"
            f"  summarizer: {row['summarizer_calls']:>5} calls,"
            f" {row['summarizer_input_tokens']:>10,} tokens"
            f" = {row['summarizer_input_vs_conversation']:.2f}x the conversation"
        )
    tiered = systems.get("tiered-memory")
    if tiered is None:
        return
    budget = out["budgets"]["prompt_budget_tokens"]
    goals = {
        "total_prompt_10x_below_full_history": (
            tiered["prompt_reduction_vs_full_history"] is not None
            and tiered["prompt_reduction_vs_full_history"] >= 10
        ),
        "max_prompt_within_budget": tiered["max_prompt_tokens"] <= budget,
        "summarizer_input_at_most_1.3x_conversation": (
            tiered["summarizer_input_vs_conversation"] <= 1.3
        ),
    }
    full_cost = systems.get("full-history", {}).get("cost_usd", {}).get("gpt-4o-mini")
    mine = tiered["cost_usd"]["gpt-4o-mini"]
    others = [
        r["cost_usd"]["gpt-4o-mini"]
        for n, r in systems.items()
        if not n.startswith("tiered-memory")  # its background variant is not a peer
    ]
    goals.update(
        {
            "cost_at_most_0.1x_full_history_cached (gpt-4o-mini)": (
                full_cost is not None and mine <= 0.1 * full_cost
            ),
            "lowest_cost_of_every_system (gpt-4o-mini)": all(mine < c for c in others),
            "cache_hit_share_at_least_0.8": tiered["cache_hit_share"] >= 0.8,
            "no_overflow_at_8k": tiered["overflow_turns"]["8000"] == 0,
        }
    )
    out["goals"] = {"tiered-memory": goals}
    for goal, ok in goals.items():
        note(f"  goal {goal}: {'PASS' if ok else 'FAIL'}")


def plot_token_cost(result: dict[str, Any], path: Path) -> None:
    """Prompt tokens per turn (top) and cumulative summarizer input (bottom), per system."""
    import itertools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    for name, series in result["per_turn"].items():
        xs = range(1, len(series["prompt_tokens"]) + 1)
        top.plot(xs, series["prompt_tokens"], label=name, linewidth=1)
        bottom.plot(xs, list(itertools.accumulate(series["summarizer_input_tokens"])), label=name)
    boundary = 0
    for row in result["conversations"][:-1]:
        boundary += row["turns"]
        for ax in (top, bottom):
            ax.axvline(boundary + 0.5, color="grey", linewidth=0.5, linestyle=":")
    top.axhline(
        result["budgets"]["prompt_budget_tokens"],
        color="black",
        linestyle="--",
        linewidth=0.8,
        label="window + summary budget",
    )
    top.set_yscale("log")
    top.set_ylabel("prompt tokens at this turn")
    name = "LongMemEval" if result.get("format") == "longmemeval" else "LoCoMo"
    top.set_title(f"{name} replayed as chats: what each memory sends per turn")
    top.legend(fontsize=8, ncol=2)
    bottom.set_ylabel("cumulative summarizer input")
    bottom.set_xlabel("turn (conversations back to back)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    note(f"wrote {path}")
    plot_dollars(result, path.with_name(path.stem + "-dollars.png"))


def plot_dollars(result: dict[str, Any], path: Path) -> None:
    """Dollars per conversation vs its length, per system, with and without prompt caching."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = [row["tokens"] for row in result["conversations"]]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, series in result.get("dollars_per_conversation", {}).items():
        (line,) = ax.plot(
            [lengths[i] for i in order], [series["cached"][i] for i in order], marker="o",
            markersize=3, label=f"{name} (cached)",
        )  # fmt: skip
        ax.plot(
            [lengths[i] for i in order], [series["uncached"][i] for i in order], linestyle=":",
            color=line.get_color(), linewidth=1, label=f"{name} (no caching)",
        )  # fmt: skip
    ax.set_xlabel("conversation length (tokens)")
    ax.set_ylabel(f"dollars per conversation ({result.get('dollar_sheet', '')}, chat + summarizer)")
    ax.set_yscale("log")
    ax.set_title("Dollars per conversation, prompt caching under the OpenAI rule")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    note(f"wrote {path}")
