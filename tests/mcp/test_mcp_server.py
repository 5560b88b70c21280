"""`tiered-memory mcp` driven by the MCP SDK's own client, the server a real subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tiered_memory.recall import RECALL_DESCRIPTION

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["ANONYMIZED_TELEMETRY"] = "False"
    return env


def _command(path: Path, user_id: str, *extra: str) -> list[str]:
    """``tiered-memory mcp ...`` through the core CLI, so the entry point is what is tested."""
    return [
        "-m", "tiered_memory.cli", "mcp", "--path", str(path), "--user-id", user_id,
        "--embedder", "hash", "--compaction", "inline", *extra,
    ]  # fmt: skip


@asynccontextmanager
async def serve(path: Path, user_id: str) -> AsyncIterator[ClientSession]:
    """A client session with a fresh server subprocess for ``user_id`` (stdio)."""
    params = StdioServerParameters(command=sys.executable, args=_command(path, user_id), env=_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _text(session: ClientSession, tool: str, **arguments: object) -> tuple[bool, str]:
    result = await session.call_tool(tool, arguments)
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    return bool(result.is_error), text


async def test_the_server_lists_recall_and_save(tmp_path: Path) -> None:
    async with serve(tmp_path, "kha") as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"recall_memory", "save_memory"}
    assert tools["recall_memory"].description == RECALL_DESCRIPTION
    recall_args = tools["recall_memory"].input_schema["properties"]
    assert set(recall_args) == {"query", "k", "since", "until"}
    assert tools["recall_memory"].input_schema["required"] == ["query"]
    assert tools["save_memory"].input_schema["required"] == ["text"]
    assert tools["recall_memory"].annotations.read_only_hint is True


async def test_a_saved_fact_is_recalled_by_a_later_client_session(tmp_path: Path) -> None:
    async with serve(tmp_path, "kha") as session:
        failed, text = await _text(session, "save_memory", text="My dog is called Biscuit.")
        assert not failed and text.startswith("Saved to long-term memory")
        failed, text = await _text(session, "recall_memory", query="the name of my dog")
        assert not failed and "Biscuit" in text  # at once, from the same server
    async with serve(tmp_path, "kha") as session:
        failed, text = await _text(session, "recall_memory", query="the name of my dog", k=3)
    assert not failed
    assert "> My dog is called Biscuit." in text and "session: mcp" in text


async def test_another_users_server_never_sees_the_fact(tmp_path: Path) -> None:
    async with serve(tmp_path, "kha") as session:
        await _text(session, "save_memory", text="My dog is called Biscuit.")
    async with serve(tmp_path, "ann") as session:
        await _text(session, "save_memory", text="My cat is called Tom.")
        failed, text = await _text(session, "recall_memory", query="my dog is called")
    assert not failed
    assert "Biscuit" not in text and "Tom" in text


async def test_bad_arguments_are_tool_errors_the_model_can_read(tmp_path: Path) -> None:
    async with serve(tmp_path, "kha") as session:
        failed, text = await _text(session, "save_memory", text="   ")
        assert failed and "empty" in text.lower()
        failed, text = await _text(session, "recall_memory", query="dog", since="last week")
        assert failed and "ISO 8601" in text
        failed, _ = await _text(session, "recall_memory", query="dog", k=0)
        assert failed
        failed, text = await _text(session, "recall_memory", query="")
        assert failed
        # the server is still up after the errors
        failed, text = await _text(session, "recall_memory", query="dog")
        assert not failed and "No relevant memories" in text


def test_an_invalid_user_id_is_refused_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *_command(tmp_path, "  ")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "user_id" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_streamable_http_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, *_command(tmp_path, "kha", "--http", "--port", str(port))],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        for _ in range(240):  # the server imports chromadb first: allow a slow machine
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                await asyncio.sleep(0.25)
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await _text(session, "save_memory", text="I moved to Hanoi in May.")
            failed, text = await _text(session, "recall_memory", query="where did I move")
        assert not failed and "Hanoi" in text
    finally:
        server.terminate()
        server.wait(timeout=30)
