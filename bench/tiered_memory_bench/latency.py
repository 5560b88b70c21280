"""``tiered-memory bench latency``: what a slow or hung summarizer costs the user's turn.

Each conversation is replayed turn by turn into each memory; a turn is ``add`` + building the
next prompt, timed with ``perf_counter``. Every summarizer (tiered-memory's, LangChain's chat
model, LlamaIndex's LLM, the seed policy's, Mem0's fact-extraction LLM) is the same fixed-output
fake made to take ``--latency`` seconds a call; ``hang`` makes it take ``--hang-seconds`` (much
longer than tiered-memory's ``summarizer_timeout``). Embedding is excluded (the hashing embedder),
as in ``overhead``. For tiered-memory the summary's lag is reported too: messages pending
(evicted, not yet summarized) after each turn, and the time ``compact()`` takes to catch up.

``--gap-ms`` puts a pause after each turn, outside the timed part: the time a chat app spends
waiting for its chat model between two turns. The default 0 replays turns back to back, a
process that is never idle (the worst case for work done in the background of that process).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .chat_memories import (
    Budgets,
    ChatMemory,
    LangChainSummarization,
    LlamaIndexChatSummary,
    SeedPolicy,
    TieredChat,
)
from .common import note, progress
from .locomo import Conversation
from .metrics import percentile
from .overhead import latency_row

LATENCY_SYSTEMS = (
    "tiered-memory",
    "langchain-summarization",
    "llamaindex-chat-summary",
    "seed-policy",
    "mem0",
)


class BackgroundTiered(TieredChat):
    """tiered-memory as an app runs it: background compaction (the default), bounded calls."""

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str, timeout: float):
        self.timeout = timeout
        super().__init__(budgets, workdir, conversation_id)

    def _open(self, session_id: str) -> Any:
        from tiered_memory import MemoryConfig, Resources, TieredMemory

        self.resources = getattr(self, "resources", None) or Resources()
        return TieredMemory(
            session_id, self.user_id, str(self.workdir),
            MemoryConfig(
                window_tokens=self.budgets.window_tokens,
                summary_tokens=self.budgets.summary_tokens,
                summarizer_timeout=self.timeout,
                summarizer_retries=0,
                close_timeout=0.1,
            ),
            summarizer=self.summarizer, embedder=self.embedder, resources=self.resources,
        )  # fmt: skip

    def pending(self) -> int:
        return len(self.memory.pending())

    def catch_up(self) -> float:
        """Seconds until the summary holds every evicted message (not part of any turn)."""
        start = time.perf_counter()
        try:
            self.memory.compact()
        except Exception as exc:  # a hanging summarizer never catches up: say so
            note(f"tiered-memory could not catch up: {exc}")
            return float("nan")
        return time.perf_counter() - start

    def close(self) -> None:
        super().close()
        self.resources.close(timeout=0.5)


class Mem0Inference:
    """Mem0 ``add`` with inference (``infer=True``): its LLM extracts facts on every add."""

    name = "mem0"

    def __init__(self, workdir: Path, conversation_id: str, delay: float) -> None:
        from .fakes import Meter, fixed_chat_model
        from .overhead import fast_embedder
        from .retrievers import mem0_memory

        self.meter = Meter(delay=delay)
        self.memory = mem0_memory(workdir, fast_embedder(), f"mem0-latency-{conversation_id}")
        self.memory.llm.langchain_model = fixed_chat_model(20, self.meter)
        self.user_id = conversation_id

    def add(self, role: str, content: str, created_at: Any = None) -> None:
        self.memory.add([{"role": role, "content": content}], user_id=self.user_id, infer=True)

    def prompt(self) -> Any:
        return None

    def close(self) -> None:
        self.memory = None


def _memory(system: str, workdir: Path, conversation_id: str, delay: float, timeout: float) -> Any:
    budgets = Budgets()
    if system == "tiered-memory":
        memory: Any = BackgroundTiered(budgets, workdir, conversation_id, timeout)
    elif system == "langchain-summarization":
        memory = LangChainSummarization(budgets, workdir, conversation_id)
    elif system == "llamaindex-chat-summary":
        memory = LlamaIndexChatSummary(budgets, workdir, conversation_id)
    elif system == "seed-policy":
        memory = SeedPolicy(budgets, workdir, conversation_id)
    elif system == "mem0":
        return Mem0Inference(workdir, conversation_id, delay)
    else:
        raise ValueError(f"no latency replay for {system!r}")
    memory.meter.delay = delay  # every fake summarizer of the system now takes this long
    return memory


def measure_latency(
    system: str,
    conversations: Sequence[Conversation],
    delay: float,
    timeout: float,
    max_turns: int | None,
    gap: float = 0.0,
) -> dict[str, Any]:
    """Per-turn milliseconds of add + prompt, and (tiered-memory) the summary's lag."""
    samples: list[float] = []
    pending: list[int] = []
    catch_up: list[float] = []
    calls = 0
    with tempfile.TemporaryDirectory(prefix=f"bench-latency-{system}-") as tmp:
        for conversation in conversations:
            memory: ChatMemory = _memory(system, Path(tmp), conversation.sample_id, delay, timeout)
            try:
                for turn in progress(conversation.turns[:max_turns], f"{system} {delay}s"):
                    start = time.perf_counter()
                    memory.add(turn.chat_role, turn.text, turn.created_at)
                    memory.prompt()
                    samples.append((time.perf_counter() - start) * 1000.0)
                    if isinstance(memory, BackgroundTiered):
                        pending.append(memory.pending())
                    if gap:
                        time.sleep(gap)
                if isinstance(memory, BackgroundTiered):
                    catch_up.append(memory.catch_up())
                calls += memory.meter.calls
            finally:
                memory.close()
    row: dict[str, Any] = {**latency_row(samples), "turns": len(samples), "summarizer_calls": calls}
    if pending:
        row["pending_messages_p50"] = percentile([float(p) for p in pending], 50)
        row["pending_messages_p99"] = percentile([float(p) for p in pending], 99)
        row["pending_messages_max"] = max(pending)
        row["catch_up_seconds"] = catch_up
    return row


def run_latency(
    conversations: Sequence[Conversation],
    systems: Sequence[str],
    latencies: Sequence[str],
    hang_seconds: float,
    timeout: float,
    mem0_turns: int,
    max_turns: int | None = None,
    gap_ms: float = 0.0,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "conversations": [c.sample_id for c in conversations],
        "summarizer_timeout": timeout,
        "hang_seconds": hang_seconds,
        "mem0_turns": mem0_turns,
        "max_turns": max_turns,
        "gap_ms": gap_ms,
        "settings": {},
        "skipped": {},
    }
    for setting in latencies:
        delay = hang_seconds if setting == "hang" else float(setting)
        rows: dict[str, Any] = {}
        for system in systems:
            try:
                limit = mem0_turns if system == "mem0" else max_turns
                rows[system] = measure_latency(
                    system, conversations, delay, timeout, limit, gap_ms / 1000.0
                )
            except ImportError as exc:
                out["skipped"][system] = f"not installed: {exc}"
        out["settings"][setting] = {"summarizer_seconds": delay, "systems": rows}
    tiered = [s["systems"].get("tiered-memory") for s in out["settings"].values()]
    out["goal_tiered_p99_le_25ms"] = all(r is not None and r["p99_ms"] <= 25.0 for r in tiered)
    return out


def add_latency_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    latency = commands.add_parser(
        "latency",
        parents=[common],
        help="turn latency with a slow or hanging summarizer, and the summary's lag",
    )
    latency.add_argument("--systems", default=",".join(LATENCY_SYSTEMS))
    latency.add_argument(
        "--latencies", default="0.5,2,hang", help="seconds per summarizer call; hang = forever"
    )
    latency.add_argument("--hang-seconds", type=float, default=30.0)
    latency.add_argument("--summarizer-timeout", type=float, default=2.0)
    latency.add_argument(
        "--max-turns",
        type=int,
        default=None,
        help="turns replayed per conversation (LlamaIndex's buffer summarizes on every turn)",
    )
    latency.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="pause after each turn, untimed (a chat model's answer time); 0 = back to back",
    )
    latency.add_argument(
        "--mem0-turns",
        type=int,
        default=40,
        help="turns replayed into Mem0 (its LLM runs on every add)",
    )


__all__ = [
    "LATENCY_SYSTEMS",
    "add_latency_parser",
    "measure_latency",
    "run_latency",
]
