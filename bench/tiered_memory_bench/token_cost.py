"""``token-cost``: prompt tokens per turn and summarizer consumption, per memory system."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chat_memories import CHAT_MEMORIES, Budgets, ChatMemoryFactory
from .common import count_prompt, note, progress, runnable_systems
from .locomo import Conversation


@dataclass
class Replay:
    """Per turn: the prompt tokens sent and the summarizer input tokens spent."""

    prompt_tokens: list[int] = field(default_factory=list)
    summarizer_input_tokens: list[int] = field(default_factory=list)
    summarizer_calls: int = 0


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
    try:
        for turn in progress(conversation.turns, f"{label} {conversation.sample_id}"):
            before = memory.meter.input_tokens
            memory.add(turn.chat_role, turn.text, turn.created_at)
            out.prompt_tokens.append(count_prompt(memory.prompt()))
            out.summarizer_input_tokens.append(memory.meter.input_tokens - before)
        out.summarizer_calls = memory.meter.calls
    finally:
        memory.close()
    return out


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
        "conversations": conv_rows,
        "conversation_tokens": total_conversation_tokens,
        "systems": {},
        "per_turn": {},
        "skipped": {},
    }
    note(
        f"token-cost: {len(conversations)} conversations, "
        f"{sum(r['turns'] for r in conv_rows)} turns, {total_conversation_tokens} tokens"
    )
    for name, factory in runnable_systems(systems, registry, out["skipped"]):
        total = Replay()
        try:
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                for conversation in conversations:
                    run = replay(factory, conversation, budgets, Path(tmp), name)
                    total.prompt_tokens += run.prompt_tokens
                    total.summarizer_input_tokens += run.summarizer_input_tokens
                    total.summarizer_calls += run.summarizer_calls
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
        }
        out["per_turn"][name] = {
            "prompt_tokens": total.prompt_tokens,
            "summarizer_input_tokens": total.summarizer_input_tokens,
        }
    add_ratios(out)
    return out


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
