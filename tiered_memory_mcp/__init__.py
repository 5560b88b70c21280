"""MCP server of tiered-memory: any MCP client gets the user's long-term memory as tools.

``tiered-memory mcp --path DIR --user-id ID`` (stdio; ``--http`` for streamable HTTP on
127.0.0.1) serves two tools over the official ``mcp`` Python SDK:

- ``recall_memory``: the core's recall tool (same description, arguments and answer text as the
  LangChain and LlamaIndex tools).
- ``save_memory``: stores a text as a user message of a dedicated session (``mcp``), so it is
  recallable from every session of the user, through any adapter.

One server serves one user, fixed at start. Needs the ``mcp`` extra.
"""

from __future__ import annotations

from .server import DEFAULT_SESSION_ID, SERVER_NAME, create_server, open_memory

__all__ = ["DEFAULT_SESSION_ID", "SERVER_NAME", "create_server", "open_memory"]
