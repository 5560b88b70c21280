"""``tiered-memory bench facts`` and the issue-16 variants of the dataset benchmarks."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tiered_memory_bench.cli import main
from tiered_memory_bench.facts_bench import PERIODS, make_keys


def test_each_key_has_distinct_values_and_one_phrasing_per_period() -> None:
    keys = make_keys(random.Random(1))
    assert [k.kind for k in keys] == ["moves", "jobs", "preferences", "keys"]
    for key in keys:
        assert len(set(key.values)) == PERIODS
        assert all(v in said for v, said in zip(key.values, key.said, strict=True))


def test_facts_command_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    assert main(["facts", "--users", "1", "--embedder", "hash", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["users"] == 1 and result["facts"] is True
    assert result["current"]["queries"] == 4
    assert result["as_of"]["queries"] == result["dated"]["queries"] == 4 * (PERIODS - 1)
    assert set(result["current"]["by_kind"]) == {"moves", "jobs", "preferences", "keys"}
    assert 0.0 <= result["current"]["rate"] <= 1.0


def test_facts_off_is_the_before(tmp_path: Path) -> None:
    out = tmp_path / "off.json"
    assert main(["facts", "--users", "1", "--embedder", "hash", "--facts", "off",
                 "--json", str(out)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["facts"] is False
    assert result["current"]["first_hit_is_fact"] == 0
