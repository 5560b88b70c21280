"""LangChain adapter of tiered-memory: chat history, agent middleware, recall tool, summarizer.

Only conversions and LangChain contracts live here; the memory itself is ``tiered_memory``.

- :class:`TieredMemoryMiddleware`: for ``langchain.agents.create_agent`` (the modern path).
- :class:`TieredChatMessageHistory`: for ``RunnableWithMessageHistory`` (deprecated LangChain API).
- :func:`create_recall_tool`: the Tier-3 recall tool; :func:`create_memory_tools`: ``save_memory``,
  ``update_memory`` and ``delete_memory`` (memory the agent writes on purpose).
- :class:`TieredMemoryRetriever`: Tier-3 recall as a ``BaseRetriever`` (past messages as documents).
- :class:`TieredMemoryStore`: a LangGraph ``BaseStore`` (LangMem tools, ``runtime.store``) whose
  search is the core's recall.
- :class:`LangChainSummarizer`: any LangChain chat model as the Tier-2 summarizer.
- Any LangChain ``Embeddings`` is a core embedder as is (pass it as ``embeddings=``).
"""

from __future__ import annotations

from .convert import from_core_message, from_core_messages, to_core_message, to_core_messages
from .history import HISTORY_CONFIG_SPECS, MemoryCache, TieredChatMessageHistory, history_factory
from .middleware import TieredMemoryMiddleware
from .retriever import TieredMemoryRetriever
from .store import TieredMemoryStore
from .summarizer import LangChainSummarizer, openai_summarizer_from_env
from .tools import (
    DeleteMemoryTool,
    RecallInput,
    RecallMemoryTool,
    SaveMemoryTool,
    UpdateMemoryTool,
    create_memory_tools,
    create_recall_tool,
)

__all__ = [
    "HISTORY_CONFIG_SPECS",
    "DeleteMemoryTool",
    "LangChainSummarizer",
    "MemoryCache",
    "RecallInput",
    "RecallMemoryTool",
    "SaveMemoryTool",
    "TieredChatMessageHistory",
    "TieredMemoryMiddleware",
    "TieredMemoryRetriever",
    "TieredMemoryStore",
    "UpdateMemoryTool",
    "create_memory_tools",
    "create_recall_tool",
    "from_core_message",
    "from_core_messages",
    "history_factory",
    "openai_summarizer_from_env",
    "to_core_message",
    "to_core_messages",
]
