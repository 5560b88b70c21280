"""The latency command on a tiny synthetic conversation: its JSON and that the lag is measured."""

from __future__ import annotations

import json
from pathlib import Path

from test_commands import run, synthetic_locomo


def test_latency_reports_turn_percentiles_and_the_summary_lag(tmp_path: Path) -> None:
    data = tmp_path / "locomo-synthetic.json"
    data.write_text(json.dumps(synthetic_locomo()), encoding="utf-8")
    result = run(
        ["latency", "--data", str(data), "--systems", "tiered-memory,seed-policy",
         "--latencies", "0.01,hang", "--hang-seconds", "0.3", "--summarizer-timeout", "0.1",
         "--no-plot"],
        tmp_path / "latency.json",
    )  # fmt: skip
    assert set(result["settings"]) == {"0.01", "hang"}
    for setting in result["settings"].values():
        tiered = setting["systems"]["tiered-memory"]
        assert {"p50_ms", "p99_ms", "turns", "pending_messages_p99", "catch_up_seconds"} <= set(
            tiered
        )
        assert tiered["turns"] == setting["systems"]["seed-policy"]["turns"] > 0
    assert isinstance(result["goal_tiered_p99_le_25ms"], bool)
