"""``tiered-memory bench secrets``: recall of the secret detector on labelled phrasings, and its
false-positive rate on ordinary chat (LoCoMo turns).

Positives are :mod:`tiered_memory_bench.secret_phrasings` (two batches: the tuning batch the
detector was developed against and a held-out batch written afterwards). A positive counts as
caught when every word of its secret value (3+ characters) is gone from the redacted text, so a
detector that fires on the cue word but leaves the value scores nothing. Negatives are the turns
of the LoCoMo file given with ``--data`` (read in place, never copied), each redacted with the
previous turn of its session as ``previous``, as the memory does; a turn counts as a false
positive if anything at all is redacted. The result names false positives by dialogue id only.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tiered_memory.redact import SecretDetector, redact

from .common import note
from .locomo import Conversation
from .secret_phrasings import PHRASINGS, Phrasing

__all__ = ["add_secrets_parser", "run_command", "run_secrets", "value_removed"]


def value_removed(value: str, redacted: str) -> bool:
    """True if no word of ``value`` (3+ characters; the whole value if it has none) is left."""
    words = [w for w in value.split() if len(w) >= 3] or [value]
    return all(word not in redacted for word in words)


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _score_positives(
    phrasings: Sequence[Phrasing], detector: SecretDetector | None
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    groups: dict[str, dict[str, list[int]]] = {
        "batch": defaultdict(lambda: [0, 0]),
        "class": defaultdict(lambda: [0, 0]),
        "language": defaultdict(lambda: [0, 0]),
        "class_by_batch": defaultdict(lambda: [0, 0]),
    }
    missed: list[dict[str, str]] = []
    for p in phrasings:
        result = redact(p.text, previous=p.previous, detector=detector)
        caught = value_removed(p.value, result.text)
        for group, key in (
            ("batch", p.batch),
            ("class", p.cls),
            ("language", p.lang),
            ("class_by_batch", f"{p.batch}/{p.cls}"),
        ):
            groups[group][key][0] += caught
            groups[group][key][1] += 1
        if not caught:
            missed.append({"batch": p.batch, "class": p.cls, "lang": p.lang, "text": p.text})
    total = len(phrasings)
    caught_all = sum(hits for hits, _ in groups["batch"].values())
    summary: dict[str, Any] = {
        "count": total,
        "recall": _rate(caught_all, total),
        **{
            f"by_{group}": {
                key: {"recall": _rate(h, n), "caught": h, "count": n}
                for key, (h, n) in sorted(counts.items())
            }
            for group, counts in groups.items()
        },
    }
    return summary, missed


def _negative_turns(conversations: Iterable[Conversation]) -> Iterable[tuple[str, str, str | None]]:
    """(dialogue id, text, previous turn of the same session or None), each text once.

    LongMemEval repeats the same sessions across questions: a repeated turn is counted once.
    """
    seen: set[str] = set()
    for conversation in conversations:
        for number in sorted(conversation.sessions):
            previous: str | None = None
            for turn in conversation.sessions[number]:
                if turn.text not in seen:
                    seen.add(turn.text)
                    yield f"{conversation.sample_id}:{turn.dia_id}", turn.text, previous
                previous = turn.text


def run_secrets(
    conversations: Sequence[Conversation],
    *,
    phrasings: Sequence[Phrasing] = PHRASINGS,
    detector: SecretDetector | None = None,
    limit_turns: int | None = None,
    dataset: str = "",
) -> dict[str, Any]:
    """Recall on ``phrasings`` and the false-positive rate on the turns of ``conversations``."""
    started = time.perf_counter()
    positives, missed = _score_positives(phrasings, detector)
    turns = list(_negative_turns(conversations))
    if limit_turns is not None:
        turns = turns[:limit_turns]
    flagged: list[dict[str, Any]] = []
    for dia_id, text, previous in turns:
        result = redact(text, previous=previous, detector=detector)
        if result.changed:
            flagged.append({"id": dia_id, "kinds": sorted({f.kind for f in result.findings})})
    return {
        "benchmark": "secrets",
        "dataset": dataset,
        "detector": type(detector).__name__ if detector is not None else "DefaultSecretDetector",
        "positives": positives,
        "missed": missed,
        "negatives": {
            "source": "the dataset's distinct turns, each with the previous turn of its session "
            "as previous",
            "count": len(turns),
            "false_positives": len(flagged),
            "false_positive_rate": _rate(len(flagged), len(turns)),
            "flagged": flagged,
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


def add_secrets_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``tiered-memory bench secrets``: registered by :func:`tiered_memory_bench.cli.build_parser`."""
    secrets = commands.add_parser(
        "secrets",
        parents=[common],
        help="secret detection: recall on labelled phrasings (7 languages), false positives on "
        "the dataset's turns",
    )
    secrets.add_argument(
        "--limit-turns", type=int, metavar="N", help="at most N negative turns (default: all)"
    )


def run_command(
    args: argparse.Namespace,
    load: Callable[[argparse.Namespace], Sequence[Conversation]],
    finish: Callable[..., int],
) -> int:
    """Run the benchmark on ``args.data`` and write ``bench/results/secrets.json``."""
    result = run_secrets(load(args), limit_turns=args.limit_turns, dataset=str(args.data))
    pos, neg = result["positives"], result["negatives"]
    for batch, row in pos["by_batch"].items():
        note(f"recall {batch}: {row['caught']}/{row['count']} = {row['recall']:.1%}")
    note(
        f"false positives: {neg['false_positives']}/{neg['count']} turns = "
        f"{neg['false_positive_rate']:.2%}"
    )
    return finish(args, result, None)
