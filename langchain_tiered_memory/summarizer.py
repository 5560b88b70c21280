"""Tier-2 summarizer backed by any LangChain chat model, and the OpenAI entry point.

Embeddings need no adapter: a LangChain ``Embeddings`` (``OpenAIEmbeddings``,
``HuggingFaceEmbeddings`` ...) has the core ``Embedder`` methods (``embed_documents``,
``embed_query`` and their async twins), so pass it as is::

    TieredChatMessageHistory(session_id="s1", user_id="kha", embeddings=OpenAIEmbeddings())
"""

from __future__ import annotations

import logging
import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig

from tiered_memory import SummarizerError, SummaryRequest, build_summary_prompt

__all__ = ["LangChainSummarizer", "openai_summarizer_from_env"]

logger = logging.getLogger("langchain_tiered_memory.summarizer")


class LangChainSummarizer:
    """Core ``Summarizer`` that sends the shared summary prompt to a LangChain chat model.

    Args:
        chat_model: Any ``BaseChatModel`` (temperature 0 recommended).
        config: Optional ``RunnableConfig`` for the calls (callbacks, tags); the run name
            defaults to ``"tiered_memory_summarizer"``.

    Example:
        ```python
        from langchain_openai import ChatOpenAI

        summarizer = LangChainSummarizer(ChatOpenAI(model="gpt-4o-mini", temperature=0))
        ```
    """

    def __init__(self, chat_model: BaseChatModel, config: RunnableConfig | None = None) -> None:
        self.chat_model = chat_model
        self.config: RunnableConfig = {"run_name": "tiered_memory_summarizer", **(config or {})}

    def prompt(self, request: SummaryRequest) -> list[BaseMessage]:
        """The LangChain messages sent for ``request`` (``build_summary_prompt``, converted)."""
        return convert_to_messages(build_summary_prompt(request))

    def summarize(self, request: SummaryRequest) -> str:
        """Return the new summary text for ``request``.

        Raises:
            SummarizerError: The model answered nothing.
        """
        return _text(self.chat_model.invoke(self.prompt(request), config=self.config))

    async def asummarize(self, request: SummaryRequest) -> str:
        """Async :meth:`summarize` (the model's native ``ainvoke``)."""
        return _text(await self.chat_model.ainvoke(self.prompt(request), config=self.config))

    def __repr__(self) -> str:
        return f"LangChainSummarizer({type(self.chat_model).__name__})"


def _text(message: Any) -> str:
    text = message.text if isinstance(message, BaseMessage) else str(message)
    text = str(text).strip()
    if not text:
        raise SummarizerError("the chat model returned an empty summary")
    return text


def openai_summarizer_from_env(model: str = "gpt-4o-mini") -> LangChainSummarizer | None:
    """The ``tiered_memory.summarizers: openai`` entry point.

    Args:
        model: OpenAI chat model used for summaries.

    Returns:
        ``LangChainSummarizer(ChatOpenAI(model=model, temperature=0))`` when ``OPENAI_API_KEY`` is
        set and ``langchain-openai`` is installed, else ``None`` (the core then falls back to its
        offline extractive summarizer).
    """
    if not os.environ.get("OPENAI_API_KEY"):
        return None
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        logger.info("OPENAI_API_KEY is set but langchain-openai is not installed")
        return None
    return LangChainSummarizer(ChatOpenAI(model=model, temperature=0))
