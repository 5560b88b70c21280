"""``python -m tiered_memory_mcp``: the same as ``tiered-memory mcp``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
