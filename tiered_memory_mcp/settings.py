"""Names the server and its command line share (importable without the MCP SDK)."""

from __future__ import annotations

__all__ = ["DEFAULT_SESSION_ID", "LOOPBACK", "SERVER_NAME"]

SERVER_NAME = "tiered-memory"
DEFAULT_SESSION_ID = "mcp"
"""The session ``save_memory`` writes to."""
LOOPBACK = "127.0.0.1"
"""The only address ``--http`` binds: the server has no authentication."""
