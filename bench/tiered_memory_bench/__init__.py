"""Benchmarks of tiered-memory against peer memories on LoCoMo (see ``tiered_memory_bench.cli``).

The LoCoMo data (CC BY-NC 4.0) is never part of this package: every command reads it from
the path given by ``--data``.
"""

from . import _env  # noqa: F401  (no telemetry: must run before Mem0/Chroma are imported)

__all__: list[str] = []
