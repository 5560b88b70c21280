"""Child of test_vector_index_loss: one process opening a user's memory and recalling once.

    python _recall_once.py PATH USER QUERY

Prints the text of each hit, then ``count <n>`` (the user's records in Tier 3). A fresh process,
because torn index files can crash the one that loads them (SIGSEGV), and because a process
checks an index's files only before it first loads them.
"""

from __future__ import annotations

import logging
import sys

from tiered_memory import HashEmbedder, MemoryConfig, Resources, TieredMemory


def main() -> None:
    path, user, query = sys.argv[1:4]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = MemoryConfig(compaction="inline", window_tokens=40, summary_tokens=60)
    with Resources() as resources:
        mem = TieredMemory("s1", user, path, settings, embedder=HashEmbedder(), resources=resources)
        for hit in mem.recall(query, exclude_window=False):
            print(hit.text.replace("\n", " "), flush=True)
        print(f"count {mem.long_term.count(user)}", flush=True)
        mem.close()


if __name__ == "__main__":
    main()
