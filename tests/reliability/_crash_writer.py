"""Child of test_crash_safety: adds messages forever, printing ``ack <id>`` once add() returned.

    python _crash_writer.py CONFIG_JSON PATH USER SESSION FIRST

Message ``n`` always has id ``m<n>`` and the same text, so a restarted writer that begins again at
the first unacknowledged message re-sends it as a client would (an idempotent no-op if the killed
writer had stored it already).
"""

from __future__ import annotations

import sys

from tm_reliability import load_config

from tiered_memory import ExtractiveSummarizer, HashEmbedder, TieredMemory

TEXT = (
    "My name is Kha and I live in Hanoi. I prefer tea over coffee. The deadline is March 3rd. "
    "We decided to use PostgreSQL for the orders service. Remind me to call Lan on Friday. "
    "Embeddings map text to vectors so that similar meanings are close together."
)
WORDS = TEXT.split()


def text_of(n: int) -> str:
    length = 4 + (n * 7) % 23  # 4..26 words: some adds overflow the window, some do not
    start = (n * 11) % len(WORDS)
    words = [WORDS[(start + i) % len(WORDS)] for i in range(length)]
    return f"message {n}: " + " ".join(words)


def main() -> None:
    config_json, path, user, session, first = sys.argv[1:6]
    mem = TieredMemory(
        session, user, path, load_config(config_json),
        summarizer=ExtractiveSummarizer(), embedder=HashEmbedder(),
    )  # fmt: skip
    print("ready", flush=True)
    n = int(first)
    while True:
        message = mem.add("user" if n % 2 == 0 else "assistant", text_of(n), id=f"m{n:05d}")
        print(f"ack {message.id}", flush=True)
        n += 1


if __name__ == "__main__":
    main()
