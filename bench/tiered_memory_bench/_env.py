"""Environment the third-party peers read at import: no telemetry, no files in the home dir.

Imported first by ``tiered_memory_bench/__init__.py`` and ``tiered_memory_bench/common.py`` (every command module
imports the latter), so it runs before Mem0 or Chroma is imported even when ``tiered_memory_bench`` is
shadowed by the ``tests/benchmarks`` directory under pytest.
"""

from __future__ import annotations

import os
import tempfile

os.environ["MEM0_TELEMETRY"] = "False"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
# Mem0 writes a config file under MEM0_DIR (default ~/.mem0) when imported: keep it in /tmp.
os.environ.setdefault("MEM0_DIR", os.path.join(tempfile.gettempdir(), "tiered-memory-bench-mem0"))
