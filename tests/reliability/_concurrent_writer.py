"""Child of test_concurrency: one of several writers of the same session.

    python _concurrent_writer.py CONFIG_JSON PATH USER SESSION WRITER COUNT LEDGER

Prints ``ready`` once its memory is open, waits for ``go`` on stdin (so that every writer starts
at once), adds COUNT messages with ids ``w<WRITER>-<n>`` and prints ``done``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tm_reliability import LedgerSummarizer, load_config

from tiered_memory import HashEmbedder, TieredMemory

DELAY_ENV = "TM_LEDGER_DELAY"


def main() -> None:
    config_json, path, user, session, writer, count, ledger = sys.argv[1:8]
    mem = TieredMemory(
        session, user, path, load_config(config_json),
        summarizer=LedgerSummarizer(Path(ledger), delay=float(os.environ.get(DELAY_ENV, "0"))),
        embedder=HashEmbedder(),
    )  # fmt: skip
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")
    for n in range(int(count)):
        mem.add("user", f"writer {writer} says message number {n}", id=f"w{writer}-{n:04d}")
    mem.close()  # background mode: give the worker its bound; what is left stays pending
    print("done", flush=True)


if __name__ == "__main__":
    main()
