"""A fact written through one integration is recalled through another; the core needs none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from langchain_tiered_memory import create_recall_tool
from openai_agents_tiered_memory import TieredSession
from tiered_memory import HashEmbedder, MemoryConfig, TieredMemory

CONFIG = MemoryConfig(compaction="inline")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["ANONYMIZED_TELEMETRY"] = "False"
    return env


def _langchain_recall(path: Path, user_id: str, query: str) -> str:
    reader = TieredMemory(
        session_id="langchain", user_id=user_id, path=path, config=CONFIG, embedder=HashEmbedder()
    )
    return str(create_recall_tool(reader).invoke({"query": query}))


async def test_a_fact_saved_over_mcp_is_recalled_by_the_langchain_tool(tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tiered_memory.cli", "mcp", "--path", str(tmp_path), "--user-id", "kha",
              "--embedder", "hash", "--compaction", "inline"],
        env=_env(),
    )  # fmt: skip
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("save_memory", {"text": "My dog is called Biscuit."})
        assert not result.is_error
    answer = _langchain_recall(tmp_path, "kha", "the name of my dog")
    assert "> My dog is called Biscuit." in answer and "session: mcp" in answer
    assert "Biscuit" not in _langchain_recall(tmp_path, "ann", "the name of my dog")


async def test_an_agents_session_fact_is_recalled_by_the_langchain_tool(tmp_path: Path) -> None:
    session = TieredSession("agents", "kha", path=tmp_path, config=CONFIG, embedder=HashEmbedder())
    await session.add_items([
        {"role": "user", "content": "I moved to Hanoi in May."},
        {"type": "message", "role": "assistant", "status": "completed", "id": "msg_1",
         "content": [{"type": "output_text", "text": "Noted, Hanoi.", "annotations": []}]},
    ])  # fmt: skip
    session.close()
    answer = _langchain_recall(tmp_path, "kha", "where did I move")
    assert "> I moved to Hanoi in May." in answer and "session: agents" in answer


def test_the_core_imports_none_of_the_new_integrations() -> None:
    code = (
        "import sys, tiered_memory, tiered_memory.cli;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tiered_memory_mcp', 'openai_agents_tiered_memory', 'mcp', 'agents')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
