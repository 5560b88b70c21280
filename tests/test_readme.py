"""Every ```python block of README.md runs as written (offline, fake models, a temp directory).

Each block runs alone in a fresh interpreter, as a reader pasting it would run it. A block that
cannot run here (it needs a server) starts with ``# readme: not run (<reason>)``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP_MARKER = re.compile(r"^# readme: not run \((?P<reason>[^)]+)\)")
_HEADING = re.compile(r"^#{1,6} (?P<title>.+)$")


def readme_blocks(text: str) -> list[tuple[str, int, str]]:
    """``(section heading, first line number, code)`` of each python block, in order."""
    blocks: list[tuple[str, int, str]] = []
    section, fence, start, code = "top", None, 0, []  # fence: the open block's language
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is None:
            if line.startswith("```"):
                fence, start, code = line[3:].strip() or "text", number + 1, []
            elif heading := _HEADING.match(line):
                section = heading.group("title")
        elif line.startswith("```"):
            if fence == "python":
                blocks.append((section, start, "\n".join(code) + "\n"))
            fence = None
        else:
            code.append(line)
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _block_id(block: tuple[str, int, str]) -> str:
    section, line, _ = block
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', section).strip('-').lower()}-L{line}"


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(b) for b in BLOCKS])
def test_readme_block_runs(block: tuple[str, int, str], tmp_path: Path) -> None:
    section, line, code = block
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    compile(code, f"README.md:{line}", "exec")  # even a block not run must be valid Python
    skip = SKIP_MARKER.match(first)
    if skip:
        pytest.skip(f"README line {line}: {skip.group('reason')}")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}  # offline summarizer
    env["ANONYMIZED_TELEMETRY"] = "False"
    script = tmp_path / f"readme_block_{line}.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, script.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"README.md line {line} ({section}) failed:\n{result.stderr[-4000:]}"
    )


def test_skipped_blocks_say_why() -> None:
    for _, line, code in BLOCKS:
        if code.lstrip().startswith("# readme: not run"):
            assert SKIP_MARKER.match(code.lstrip()), f"README line {line}: give a reason"
