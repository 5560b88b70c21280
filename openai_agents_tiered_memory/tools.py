"""The recall tool for Agents SDK agents: the core's tool text as a ``FunctionTool``."""

from __future__ import annotations

import json
from typing import Any

from agents import FunctionTool, RunContextWrapper

from tiered_memory import TieredMemory, TieredMemoryError, format_recall_hits
from tiered_memory.recall import RECALL_ARGUMENTS, RECALL_DESCRIPTION, parse_when

from .session import TieredSession

__all__ = ["RECALL_PARAMETERS", "create_recall_tool"]

RECALL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": RECALL_ARGUMENTS["query"]},
        "k": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": 50,
            "description": RECALL_ARGUMENTS["k"],
        },
        "since": {"type": ["string", "null"], "description": RECALL_ARGUMENTS["since"]},
        "until": {"type": ["string", "null"], "description": RECALL_ARGUMENTS["until"]},
    },
    "required": ["query", "k", "since", "until"],
    "additionalProperties": False,
}
"""Strict JSON schema (every key required, null for "not given"), as the Agents SDK prefers."""


def create_recall_tool(
    source: TieredSession | TieredMemory, *, name: str = "recall_memory", k: int = 5
) -> FunctionTool:
    """A ``FunctionTool`` searching the long-term memory of ``source``'s user.

    It leaves out what the session's window already shows, and answers with
    ``tiered_memory.format_recall_hits`` text; a bad argument is answered with an error text the
    model can read, never raised into the run.

    Raises:
        TypeError: ``source`` is neither a ``TieredSession`` nor a ``TieredMemory``.
        ValueError: ``k`` is not an int >= 1.
    """
    if isinstance(source, TieredSession):
        memory = source.memory
    elif isinstance(source, TieredMemory):
        memory = source
    else:
        raise TypeError(
            f"create_recall_tool takes a TieredSession or a TieredMemory, got {type(source).__name__}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")

    async def invoke(_: RunContextWrapper[Any], arguments: str) -> str:
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict) or not isinstance(args.get("query"), str):
                return "Error: recall_memory needs a 'query' string."
            hits = await memory.arecall(
                args["query"],
                k=args.get("k") or k,
                since=parse_when(args.get("since")),
                until=parse_when(args.get("until"), end_of_day=True),
            )
        except ValueError as exc:  # bad JSON, or InvalidMessageError from the core
            return f"Error: {exc}"
        except TieredMemoryError as exc:
            return f"Error: recall failed: {exc}"
        return format_recall_hits(hits)

    return FunctionTool(
        name=name,
        description=RECALL_DESCRIPTION,
        params_json_schema=RECALL_PARAMETERS,
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )
