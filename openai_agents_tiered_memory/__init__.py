"""OpenAI Agents SDK adapter of tiered-memory (the ``agents`` extra).

- :class:`TieredSession`: the SDK's ``Session`` protocol; ``Runner.run(agent, text,
  session=TieredSession("s1", "kha"))`` shows the model summary + window, keeps every item.
- :func:`create_recall_tool`: the Tier-3 recall tool as a ``FunctionTool``.

Only conversions and the SDK's contracts live here; the memory itself is ``tiered_memory``.
"""

from __future__ import annotations

from .convert import item_to_message, message_to_items
from .session import TieredSession
from .tools import create_recall_tool

__all__ = ["TieredSession", "create_recall_tool", "item_to_message", "message_to_items"]
