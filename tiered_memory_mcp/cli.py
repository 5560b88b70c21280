"""``tiered-memory mcp``: serve one user's memory to MCP clients (stdio, or streamable HTTP).

Registered as the ``mcp`` command of the core CLI (entry point group ``tiered_memory.commands``);
also ``python -m tiered_memory_mcp``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from tiered_memory import ConfigError, HashEmbedder, MemoryConfig, TieredMemoryError

from .settings import DEFAULT_SESSION_ID, LOOPBACK

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiered-memory mcp",
        description=(
            "MCP server exposing recall_memory and save_memory for one user. stdio by default "
            "(what desktop assistants and IDE agents launch); --http serves streamable HTTP on "
            f"{LOOPBACK} only (no authentication: never expose it)."
        ),
    )
    parser.add_argument("--path", default="./.tiered_memory", help="store directory")
    parser.add_argument("--user-id", required=True, help="the user whose memory is served")
    parser.add_argument(
        "--session-id",
        default=DEFAULT_SESSION_ID,
        help=f"session save_memory writes to (default: {DEFAULT_SESSION_ID})",
    )
    parser.add_argument("--http", action="store_true", help=f"streamable HTTP on {LOOPBACK}")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (with --http)")
    parser.add_argument(
        "--embedder",
        choices=("default", "hash"),
        default="default",
        help="default: the embedded MiniLM; hash: the hashing embedder (tests, no semantics)",
    )
    parser.add_argument(
        "--compaction",
        choices=("background", "inline"),
        default=None,
        help="summary compaction mode (default: the core's)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until the client disconnects; 2 on a bad argument."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        stream=sys.stderr,  # stdout is the stdio transport
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    try:
        from .server import create_server, open_memory
    except ImportError as exc:  # the entry point is installed with the core, the SDK is an extra
        print(
            f"tiered-memory mcp: the MCP SDK is missing ({exc}); pip install 'tiered-memory[mcp]'",
            file=sys.stderr,
        )
        return 2
    config_fields: dict[str, Any] = {}
    if args.compaction:
        config_fields["compaction"] = args.compaction
    try:
        memory = open_memory(
            args.path,
            args.user_id,
            session_id=args.session_id,
            config=MemoryConfig(**config_fields),
            embedder=HashEmbedder() if args.embedder == "hash" else None,
        )
    except ConfigError as exc:
        print(f"tiered-memory mcp: {exc}", file=sys.stderr)
        return 2
    server = create_server(memory)
    try:
        if args.http:
            server.run("streamable-http", host=LOOPBACK, port=args.port)
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        pass
    except TieredMemoryError as exc:
        print(f"tiered-memory mcp: {exc}", file=sys.stderr)
        return 1
    finally:
        memory.close()
    return 0
