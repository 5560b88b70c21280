"""Chat memories replayed turn by turn by ``token-cost`` and ``overhead``.

Each implements :class:`ChatMemory`: ``add(role, content)`` stores one chat message and
``prompt()`` returns what the memory would send to the model now (OpenAI-format dicts). Their
summarizers are fixed-output fakes that meter the tokens they are sent (``tiered_memory_bench.fakes``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from tiered_memory import MemoryConfig, Message, Summarizer, SummaryRequest
from tiered_memory.summary import SUMMARY_PREFIX
from tiered_memory.worker import BackgroundWorker

from .common import count_prompt, counter
from .fakes import (
    FixedSummarizer,
    Meter,
    fixed_chat_model,
    fixed_llamaindex_llm,
    langchain_to_dicts,
)


@dataclass(frozen=True)
class Budgets:
    """The same budgets for every system."""

    window_tokens: int = 2000
    summary_tokens: int = 500
    summary_output_tokens: int = 250  # what the fake summarizers answer
    evict_to: float = MemoryConfig.evict_to  # the low watermark: tiered-memory's, LangChain's keep

    @property
    def prompt_tokens(self) -> int:
        return self.window_tokens + self.summary_tokens


class ChatMemory(Protocol):
    name: str
    meter: Meter

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None: ...

    def prompt(self) -> list[dict[str, str]]: ...

    def close(self) -> None: ...


def token_list(text: str) -> list[int]:
    """A ``tokenizer_fn`` for LlamaIndex counting with the core's counter (only len is used)."""
    return [0] * counter().count_text(text)


class FullHistory:
    """Every message, every time: the baseline."""

    name = "full-history"

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str) -> None:
        self.meter = Meter()
        self.messages: list[dict[str, str]] = []

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        self.messages.append({"role": role, "content": content})

    def prompt(self) -> list[dict[str, str]]:
        return list(self.messages)

    def close(self) -> None:
        self.messages.clear()


class TieredChat:
    """tiered-memory with its default MemoryConfig (budgets as given) and a fixed summarizer."""

    name = "tiered-memory"

    def __init__(
        self,
        budgets: Budgets,
        workdir: Path,
        conversation_id: str,
        embedder: Any = None,
        summarizer: Summarizer | None = None,
    ) -> None:
        """``summarizer``: None = a fixed-output fake metered by ``self.meter``."""
        from tiered_memory import HashEmbedder

        self.meter = Meter()
        self.budgets = budgets
        self.workdir = workdir
        self.user_id = conversation_id
        self.summarizer = summarizer or FixedSummarizer(budgets.summary_output_tokens, self.meter)
        self.embedder = embedder if embedder is not None else HashEmbedder()
        self.memory = self._open(f"{conversation_id}-chat")

    def _open(self, session_id: str) -> Any:
        from tiered_memory import MemoryConfig, TieredMemory

        return TieredMemory(
            session_id=session_id,
            user_id=self.user_id,
            path=str(self.workdir),
            config=MemoryConfig(
                window_tokens=self.budgets.window_tokens,
                summary_tokens=self.budgets.summary_tokens,
                evict_to=self.budgets.evict_to,
                compaction=self.compaction,
            ),
            summarizer=self.summarizer,
            embedder=self.embedder,
            **self._resources(),
        )

    compaction: Literal["inline", "background"] = "inline"  # replays must be deterministic

    def _resources(self) -> dict[str, Any]:
        return {}

    def start_session(self, session_id: str) -> None:
        """Continue as a new session of the same user (the window and summary start empty)."""
        self.memory.close()
        self.memory = self._open(session_id)

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        self.memory.add(role, content, created_at=created_at)

    def prompt(self) -> list[dict[str, str]]:
        return self.memory.context()

    def close(self) -> None:
        self.memory.close()


class DeferredWorker(BackgroundWorker):
    """A background worker that runs its jobs only when told (``run_queued``): a deterministic
    stand-in for "the summary lands after this turn's prompt was sent, before the next turn"."""

    def __init__(self) -> None:
        super().__init__(1)
        self.jobs: dict[Hashable, Callable[[], None]] = {}

    def submit(self, key: Hashable, job: Callable[[], None]) -> bool:
        self.jobs[key] = job  # a later job for the same session replaces it, as the real one
        return True

    def wait(self, key: Hashable, timeout: float | None = None) -> bool:
        return True

    def run_queued(self) -> None:
        jobs, self.jobs = self.jobs, {}
        for job in jobs.values():
            job()


class TieredChatBackground(TieredChat):
    """tiered-memory with ``compaction="background"``, the default: ``add`` evicts and returns,
    the prompt of that turn is built before the summarizer ran (pending messages are shown as
    the layout allows), and the summary lands before the next message."""

    name = "tiered-memory-background"
    compaction: Literal["inline", "background"] = "background"

    def _resources(self) -> dict[str, Any]:
        from tiered_memory.resources import Resources

        if not hasattr(self, "resources"):
            self.resources = Resources()
            self.worker = DeferredWorker()
            self.resources.worker = self.worker
        return {"resources": self.resources}

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        self.worker.run_queued()
        super().add(role, content, created_at)

    def close(self) -> None:
        super().close()
        self.resources.close()


class LangChainSummarization:
    """LangChain ``SummarizationMiddleware``, its ``before_model`` hook driven directly.

    trigger = window + summary tokens, keep = ``evict_to`` x window tokens (the same low
    watermark as tiered-memory), the core's token counter, a fixed-output fake chat model.
    """

    name = "langchain-summarization"

    def __init__(
        self,
        budgets: Budgets,
        workdir: Path,
        conversation_id: str,
        summarizer: Summarizer | None = None,
    ) -> None:
        """``summarizer``: None = the fixed-output fake model; else the core summarizer runs as
        the middleware's ``summarizer`` callable (messages in, summary text out)."""
        from langchain.agents.middleware import SummarizationMiddleware

        self.meter = Meter()
        self.messages: list[Any] = []
        self.middleware = SummarizationMiddleware(
            model=fixed_chat_model(budgets.summary_output_tokens, self.meter),
            trigger=("tokens", budgets.prompt_tokens),
            keep=("tokens", int(budgets.window_tokens * budgets.evict_to)),
            token_counter=lambda messages: count_prompt(langchain_to_dicts(list(messages))),
            summarizer=(
                None
                if summarizer is None
                else langchain_summarizer(summarizer, budgets.summary_tokens)
            ),
        )

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        from langchain_core.messages import AIMessage, HumanMessage

        cls = HumanMessage if role == "user" else AIMessage
        self.messages.append(cls(content=content))
        update = self.middleware.before_model({"messages": self.messages}, None)  # type: ignore[arg-type]
        if update is not None:
            # [RemoveMessage(REMOVE_ALL_MESSAGES), summary, *preserved]: the reducer's result
            self.messages = list(update["messages"][1:])

    def prompt(self) -> list[dict[str, str]]:
        return langchain_to_dicts(self.messages)

    def close(self) -> None:
        self.messages.clear()


def langchain_summarizer(summarizer: Summarizer, max_tokens: int) -> Callable[[list[Any]], str]:
    """A core :class:`~tiered_memory.Summarizer` as SummarizationMiddleware's ``summarizer``."""

    def summarize(messages: list[Any]) -> str:
        core = [
            Message(role="assistant" if d["role"] == "assistant" else "user", content=d["content"])
            for d in langchain_to_dicts(messages)
            if d["content"].strip()
        ]
        request = SummaryRequest(previous_summary="", messages=tuple(core), max_tokens=max_tokens)
        return summarizer.summarize(request)

    return summarize


class LangChainTrim:
    """LangChain ``trim_messages`` (strategy "last", the core's counter) at window + summary
    tokens over the whole thread, applied to every call as LangChain's docs show."""

    name = "langchain-trim"

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str) -> None:
        self.meter = Meter()
        self.budgets = budgets
        self.messages: list[Any] = []

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        from langchain_core.messages import AIMessage, HumanMessage

        self.messages.append((HumanMessage if role == "user" else AIMessage)(content=content))

    def prompt(self) -> list[dict[str, str]]:
        return trimmed(self.messages, self.budgets.prompt_tokens)

    def close(self) -> None:
        self.messages.clear()


def trimmed(messages: list[Any], max_tokens: int) -> list[dict[str, str]]:
    """``trim_messages(strategy="last")`` at ``max_tokens`` with the core's counter."""
    from langchain_core.messages import trim_messages

    kept = trim_messages(
        messages,
        max_tokens=max_tokens,
        strategy="last",
        token_counter=lambda ms: count_prompt(langchain_to_dicts(list(ms))),
        start_on="human",
        allow_partial=False,
    )
    return langchain_to_dicts(kept)


def _llama_messages(messages: list[Any]) -> list[dict[str, str]]:
    return [{"role": str(m.role.value), "content": m.content or ""} for m in messages]


class _LlamaIndexChat:
    """A LlamaIndex memory driven through put/get, the way chat engines use it."""

    memory: Any

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        from llama_index.core.base.llms.types import ChatMessage

        self.memory.put(ChatMessage(role=role, content=content))

    def prompt(self) -> list[dict[str, str]]:
        return _llama_messages(self.memory.get())

    def close(self) -> None:
        self.memory.reset()


class LlamaIndexMemory(_LlamaIndexChat):
    """LlamaIndex ``Memory`` without memory blocks: old messages are flushed (dropped)."""

    name = "llamaindex-memory"

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str) -> None:
        from llama_index.core.memory import Memory

        self.meter = Meter()
        limit = budgets.prompt_tokens
        self.memory = Memory.from_defaults(
            session_id=f"{conversation_id}-chat",
            token_limit=limit,
            chat_history_token_ratio=budgets.window_tokens / limit,
            token_flush_size=max(1, int(limit * 0.1)),
            tokenizer_fn=token_list,
        )


class LlamaIndexChatSummary(_LlamaIndexChat):
    """LlamaIndex ``ChatSummaryMemoryBuffer`` (token_limit = window) with a fixed-output LLM."""

    name = "llamaindex-chat-summary"

    def __init__(self, budgets: Budgets, workdir: Path, conversation_id: str) -> None:
        from llama_index.core.memory import ChatSummaryMemoryBuffer

        self.meter = Meter()
        self.memory = ChatSummaryMemoryBuffer.from_defaults(
            llm=fixed_llamaindex_llm(budgets.summary_output_tokens, self.meter),
            token_limit=budgets.window_tokens,
            tokenizer_fn=token_list,
        )


class SeedPolicy:
    """The naive policy: over the window budget, compress the oldest half of the window,
    re-summarizing every message evicted so far from scratch (no running summary)."""

    name = "seed-policy"

    def __init__(
        self,
        budgets: Budgets,
        workdir: Path,
        conversation_id: str,
        summarizer: Summarizer | None = None,
    ) -> None:
        self.budgets = budgets
        self.meter = Meter()
        self.summarizer = summarizer or FixedSummarizer(budgets.summary_output_tokens, self.meter)
        self.window: list[Message] = []
        self.evicted: list[Message] = []
        self.summary = ""

    def add(self, role: str, content: str, created_at: datetime | None = None) -> None:
        self.window.append(Message(role=role, content=content))  # type: ignore[arg-type]
        if counter().count_messages(self.window) > self.budgets.window_tokens:
            half = max(1, len(self.window) // 2)
            self.evicted.extend(self.window[:half])
            self.window = self.window[half:]
            request = SummaryRequest(
                previous_summary="",
                messages=tuple(self.evicted),
                max_tokens=self.budgets.summary_tokens,
            )
            self.summary = self.summarizer.summarize(request)

    def prompt(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": f"{SUMMARY_PREFIX}\n{self.summary}"}]
        return (head if self.summary else []) + [m.to_openai() for m in self.window]

    def close(self) -> None:
        self.window.clear()


ChatMemoryFactory = Callable[[Budgets, Path, str], ChatMemory]

#: name -> (factory, the package it needs: a missing package is a recorded skip)
CHAT_MEMORIES: dict[str, tuple[ChatMemoryFactory, str]] = {
    "full-history": (FullHistory, "tiered_memory"),
    "tiered-memory": (TieredChat, "tiered_memory"),
    "tiered-memory-background": (TieredChatBackground, "tiered_memory"),
    "langchain-summarization": (LangChainSummarization, "langchain.agents.middleware"),
    "llamaindex-memory": (LlamaIndexMemory, "llama_index.core"),
    "llamaindex-chat-summary": (LlamaIndexChatSummary, "llama_index.core"),
    "seed-policy": (SeedPolicy, "tiered_memory"),
    "langchain-trim": (LangChainTrim, "langchain_core.messages"),
}
