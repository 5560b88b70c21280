"""LlamaIndex adapter of tiered-memory: a ``BaseMemory``, a recall tool and two memory blocks.

The memory logic is the core's (:mod:`tiered_memory`); this package only converts messages and
honours LlamaIndex contracts. ``create_memory_tools`` gives the agent ``save_memory``,
``update_memory`` and ``delete_memory`` beside ``create_recall_tool``.
"""

from __future__ import annotations

from .blocks import TieredRecallBlock, TieredSummaryBlock
from .convert import from_core, from_core_messages, to_core, to_core_messages
from .memory import TieredChatMemory
from .summarizer import LlamaIndexSummarizer
from .tools import RECALL_DESCRIPTION, RecallInput, create_memory_tools, create_recall_tool

__all__ = [
    "RECALL_DESCRIPTION",
    "LlamaIndexSummarizer",
    "RecallInput",
    "TieredChatMemory",
    "TieredRecallBlock",
    "TieredSummaryBlock",
    "create_memory_tools",
    "create_recall_tool",
    "from_core",
    "from_core_messages",
    "to_core",
    "to_core_messages",
]
