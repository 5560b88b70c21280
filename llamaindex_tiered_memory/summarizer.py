"""``LlamaIndexSummarizer``: any LlamaIndex LLM as the core's Tier-2 summarizer."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.llms.llm import LLM

from tiered_memory import SummarizerError, SummaryRequest, build_summary_prompt


class LlamaIndexSummarizer:
    """Sends the core's one summary prompt (:func:`tiered_memory.build_summary_prompt`) to ``llm``.

    Implements the :class:`tiered_memory.Summarizer` protocol; the core handles budgets, retries,
    timeouts and condensing.
    """

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    def __repr__(self) -> str:
        return f"LlamaIndexSummarizer({type(self.llm).__name__})"

    @staticmethod
    def messages(request: SummaryRequest) -> list[ChatMessage]:
        """The prompt of ``request`` as LlamaIndex chat messages."""
        return [
            ChatMessage(role=item["role"], content=item["content"])
            for item in build_summary_prompt(request)
        ]

    def summarize(self, request: SummaryRequest) -> str:
        return _text(self.llm.chat(self.messages(request)))

    async def asummarize(self, request: SummaryRequest) -> str:
        return _text(await self.llm.achat(self.messages(request)))


def _text(response: ChatResponse) -> str:
    text = (response.message.content or "").strip()
    if not text:
        raise SummarizerError("the LLM returned an empty summary")
    return text
