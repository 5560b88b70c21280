"""``facts``: a synthetic suite of facts that change three times each.

Each user has four keys, one of each kind — where they live (moves), where they work (jobs), a
favourite thing (preferences), a code or password (keys: these are vaulted secrets) — and each
key takes four values, one per period of ~90 days, said in varied first-person phrasings in
four sessions, among filler turns and distractors ("my sister lives in ..."). Then it asks:

- current: "where do I live now?" — is the current value in the first hit?
- as_of: the same question with ``as_of`` in the middle of each earlier period — is the value
  that held then in the first hit?
- dated: "where did I live in <Month YYYY>?" with the question's time ``now`` — likewise.

``--facts off`` runs the same suite on raw turns only (facts off, as before issue 16).
Generated with a fixed seed; no dataset is read.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .common import benchmark_embedder, note

START = datetime(2025, 1, 6, 10, tzinfo=timezone.utc)
PERIOD = timedelta(days=91)
PERIODS = 4

CITIES = [
    "Paris",
    "Berlin",
    "Madrid",
    "Lisbon",
    "Vienna",
    "Prague",
    "Oslo",
    "Dublin",
    "Zurich",
    "Warsaw",
    "Athens",
    "Helsinki",
    "Toronto",
    "Kyoto",
    "Seoul",
    "Hanoi",
    "Lima",
    "Nairobi",
]
EMPLOYERS = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Labs",
    "Stark Industries",
    "Hooli",
    "Wayne Enterprises",
    "Tyrell Systems",
    "Cyberdyne",
    "Soylent Foods",
    "Vandelay Imports",
    "Pied Piper",
    "Aperture Science",
    "Wonka Industries",
    "Monarch Solutions",
]
THINGS = {
    "band": ["Radiohead", "Daft Punk", "ABBA", "Coldplay", "Queen", "Metallica", "Björk"],
    "dish": ["lasagna", "pad thai", "ramen", "paella", "falafel", "moussaka", "pho"],
    "colour": ["teal", "crimson", "ochre", "violet", "emerald", "amber", "navy"],
    "sport": ["tennis", "climbing", "rowing", "badminton", "fencing", "surfing", "judo"],
}
CODES = ["locker code", "gate code", "wifi password", "alarm code"]
HOME_SAID = [
    "I live in {v}.",
    "I just moved to {v}, the new flat is great.",
    "I've moved to {v} last week.",
    "Big news: I moved to {v}!",
]
JOB_SAID = [
    "I work at {v}.",
    "I started working at {v} this month.",
    "I joined {v} as a data engineer.",
    "I got a new job at {v}.",
]
LIKE_SAID = [
    "My favourite {t} is {v}.",
    "My favourite {t} is now {v}.",
    "Honestly, my favourite {t} is {v} these days.",
    "My favourite {t} is {v}, by far.",
]
CODE_SAID = ["My {t} is {v}.", "My new {t} is {v}.", "My {t} is now {v}.", "My {t} is {v} now."]
FILLERS = ["Can you suggest a quick soup recipe?", "I went hiking on Saturday, it was lovely.",
           "What's a good book about history?", "My sister lives in Rome.",
           "I visited Vienna for a conference once.", "Remind me to water the plants.",
           "Do you know any good podcasts?", "My friend works at Globex too.",
           "The weather has been rainy all week.", "How do I fix a squeaky door?"]  # fmt: skip
ASK = {"home": "Where do I live now?", "employer": "Where do I work?"}
ASK_THEN = {"home": "Where did I live in {when}?", "employer": "Where did I work in {when}?"}


@dataclass(frozen=True)
class Key:
    kind: str  # moves | jobs | preferences | keys
    question: str
    question_then: str
    values: tuple[str, ...]  # one per period
    said: tuple[str, ...]  # the turn of each period


def make_keys(rng: random.Random) -> list[Key]:
    """One key of each kind with PERIODS distinct values and their phrasings."""
    homes = rng.sample(CITIES, PERIODS)
    jobs = rng.sample(EMPLOYERS, PERIODS)
    thing = rng.choice(sorted(THINGS))
    likes = rng.sample(THINGS[thing], PERIODS)
    code = rng.choice(CODES)
    secrets = [_secret(rng, code) for _ in range(PERIODS)]
    return [
        Key("moves", ASK["home"], ASK_THEN["home"], tuple(homes),
            tuple(HOME_SAID[i].format(v=v) for i, v in enumerate(homes))),
        Key("jobs", ASK["employer"], ASK_THEN["employer"], tuple(jobs),
            tuple(JOB_SAID[i].format(v=v) for i, v in enumerate(jobs))),
        Key("preferences", f"What is my favourite {thing}?",
            f"What was my favourite {thing} in {{when}}?", tuple(likes),
            tuple(LIKE_SAID[i].format(t=thing, v=v) for i, v in enumerate(likes))),
        Key("keys", f"What is my {code}?", f"What was my {code} in {{when}}?", tuple(secrets),
            tuple(CODE_SAID[i].format(t=code, v=v) for i, v in enumerate(secrets))),
    ]  # fmt: skip


def _secret(rng: random.Random, code: str) -> str:
    if "password" in code:
        return f"{rng.choice(['Tumble', 'Maple', 'Quartz', 'Falcon'])}-{rng.randint(100, 999)}!x"
    return "".join(rng.choice("0123456789") for _ in range(6))


def period_start(n: int) -> datetime:
    return START + PERIOD * n


def month_phrase(when: datetime) -> str:
    return when.strftime("%B %Y")


@dataclass
class Tally:
    asked: int = 0
    first: int = 0
    fact_first: int = 0

    def add(self, hits: Sequence[Any], value: str) -> None:
        self.asked += 1
        if hits and value.lower() in hits[0].text.lower():
            self.first += 1
            self.fact_first += int(getattr(hits[0], "role", "") == "fact")

    def row(self) -> dict[str, Any]:
        rate = self.first / self.asked if self.asked else 0.0
        return {"queries": self.asked, "first_hit_right": self.first, "rate": round(rate, 4),
                "first_hit_is_fact": self.fact_first}  # fmt: skip


def run_user(
    workdir: Path, user: int, rng: random.Random, embedder: Any, facts: bool,
    tallies: dict[str, dict[str, Tally]],
) -> None:  # fmt: skip
    """One user's four sessions, then every question of their keys."""
    from tiered_memory import ExtractiveSummarizer, MemoryConfig, TieredMemory

    config = MemoryConfig(
        window_tokens=200, summary_tokens=300, compaction="inline", facts=facts, index_batch=64
    )
    keys = make_keys(rng)
    user_id = f"user-{user}"
    for period in range(PERIODS):
        mem = TieredMemory(f"s{period}", user_id, workdir, config, ExtractiveSummarizer(),
                           embedder)  # fmt: skip
        when = period_start(period) + timedelta(days=rng.randint(0, 10))
        turns = [k.said[period] for k in keys] + rng.sample(FILLERS, 6)
        rng.shuffle(turns)
        for text in turns:
            mem.add("user", text, created_at=when)
            mem.add("assistant", "Thanks, noted.", created_at=when + timedelta(minutes=1))
            when += timedelta(hours=rng.randint(1, 30))
        for n in range(24):  # the session goes on: its turns leave the window, get summarized
            mem.add("user", f"Small talk {n}: nothing much today.", created_at=when)
            when += timedelta(minutes=5)
        mem.compact()
        mem.close()
    ask = TieredMemory("questions", user_id, workdir, config, ExtractiveSummarizer(), embedder)
    end = period_start(PERIODS) + timedelta(days=20)
    for key in keys:
        tallies["current"][key.kind].add(
            ask.recall(key.question, k=5, now=end, exclude_window=False), key.values[-1]
        )
        for period in range(PERIODS - 1):
            middle = period_start(period) + PERIOD / 2 + timedelta(days=6)
            hits = ask.recall(key.question, k=5, as_of=middle, exclude_window=False)
            tallies["as_of"][key.kind].add(hits, key.values[period])
            dated = key.question_then.format(when=month_phrase(middle))
            hits = ask.recall(dated, k=5, now=end, exclude_window=False)
            tallies["dated"][key.kind].add(hits, key.values[period])
    ask.close()


def run_facts_bench(users: int, embedder: Any, facts: bool, seed: int = 16) -> dict[str, Any]:
    rng = random.Random(seed)
    kinds = ("moves", "jobs", "preferences", "keys")
    tallies = {q: {k: Tally() for k in kinds} for q in ("current", "as_of", "dated")}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-facts-") as tmp:
        for user in range(users):
            run_user(Path(tmp), user, rng, embedder, facts, tallies)
            note(f"  user {user + 1}/{users} done ({time.perf_counter() - started:.0f}s)")
    out: dict[str, Any] = {
        "users": users, "keys_per_user": len(kinds), "values_per_key": PERIODS,
        "facts": facts, "embedder": getattr(embedder, "name", type(embedder).__name__),
        "seed": seed, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    for query, by_kind in tallies.items():
        total = Tally(
            sum(t.asked for t in by_kind.values()),
            sum(t.first for t in by_kind.values()),
            sum(t.fact_first for t in by_kind.values()),
        )
        out[query] = {**total.row(), "by_kind": {k: t.row() for k, t in by_kind.items()}}
    return out


def add_facts_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``tiered-memory bench facts``: registered by :func:`tiered_memory_bench.cli.build_parser`."""
    facts = commands.add_parser(
        "facts",
        parents=[common],
        help="synthetic facts that change three times (moves, jobs, preferences, keys): "
        "current value first, as_of, dated questions",
    )
    facts.add_argument("--users", type=int, default=20, help="synthetic users (4 keys each)")
    facts.add_argument("--facts", choices=("on", "off"), default="on")
    facts.add_argument("--embedder", choices=("default", "hash"), default="default")
    facts.add_argument("--seed", type=int, default=16)


def run_command(args: argparse.Namespace, finish: Callable[..., int]) -> int:
    from .embedding_cache import cache_dir

    embedder = benchmark_embedder(args.embedder, cache_dir(None))
    result = run_facts_bench(args.users, embedder, args.facts == "on", args.seed)
    for query in ("current", "as_of", "dated"):
        row = result[query]
        note(f"{query}: {row['first_hit_right']}/{row['queries']} = {row['rate']:.1%} first hit")
    args.dataset_kind = "synthetic" if args.facts == "on" else "synthetic-facts-off"
    return finish(args, result, None)


__all__ = ["add_facts_parser", "make_keys", "run_command", "run_facts_bench"]
