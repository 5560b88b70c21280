"""Fixtures of the reliability suite: recording ledgers and reaped child processes.

Every test runs on the backends of ``make_memory``: SQLite + embedded Chroma under ``tmp_path``,
or PostgreSQL + a Chroma server when ``.ci/run`` exports ``TM_TEST_*`` (a namespace per test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A file the LedgerSummarizer of every process appends its calls to."""
    return tmp_path / "summarizer-ledger.jsonl"


# --- child processes ---------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["ANONYMIZED_TELEMETRY"] = "False"
    root = str(HERE.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, str(HERE), env.get("PYTHONPATH", "")) if p
    )
    return env


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python tests/reliability/<script> args...`` (line-buffered pipes); all are reaped."""
    children: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-u", str(HERE / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=child_env(),
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
