"""Prompt caching and prices: what a provider bills for a sequence of prompts.

Pure functions over token-id sequences (no I/O), used by ``token-cost``:

- OpenAI caches automatically: a prompt of at least 1,024 tokens reuses the longest prefix it
  shares with a recent prompt, in 128-token steps past the first 1,024 (OpenAI, "Prompt
  caching" guide). Cached tokens bill at the model's cached-input price.
- Anthropic caches up to an explicit ``cache_control`` breakpoint; modelled here as a breakpoint
  at the end of every prompt: the prefix shared with the previous prompt is a cache read (0.1x
  input), the rest of the prompt a cache write (1.25x input, 5-minute cache), provided the
  prompt reaches the model's minimum cacheable length (Anthropic, "Prompt caching" docs).

The cache is assumed warm between consecutive calls of one conversation (a chat turn is well
inside the 5-minute lifetime) and holds only the previous prompt (what a sliding window can hit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PRICES_AS_OF = (
    "checked 2026-12-01 without internet, against stored copies of the pages in PRICE_SOURCES "
    "(official pages where a copy was found, else third-party copies: 'unverified')"
)


@dataclass(frozen=True)
class CacheRule:
    """How much of a prompt's shared prefix a provider serves from its cache."""

    name: str
    min_tokens: int  # prompts shorter than this are never cached
    step: int  # the cached prefix grows in steps of this many tokens past ``min_tokens``
    writes_billed: bool  # Anthropic bills the uncached part as a cache write

    def cached(self, prompt: Sequence[int], previous: Sequence[int] | None) -> int:
        """Tokens of ``prompt`` served from the cache after ``previous`` was sent."""
        if previous is None:
            return 0
        return self.cached_shared(common_prefix(prompt, previous), len(prompt))

    def cached_shared(self, shared: int, length: int) -> int:
        """Cached tokens of a ``length``-token prompt sharing ``shared`` tokens with the last."""
        if length < self.min_tokens or shared < self.min_tokens:
            return 0
        return shared - (shared - self.min_tokens) % self.step


OPENAI = CacheRule("openai", min_tokens=1024, step=128, writes_billed=False)
ANTHROPIC_HAIKU = CacheRule("anthropic", min_tokens=4096, step=1, writes_billed=True)


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    model: str
    input: float
    cached_input: float
    output: float
    rule: CacheRule
    cache_write: float | None = None  # Anthropic: 1.25x input for the 5-minute cache


#: The one price table (per 1M tokens, USD; see PRICES_AS_OF and PRICE_SOURCES).
PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price("gpt-4o-mini", 0.15, 0.075, 0.60, OPENAI),
    "gpt-4.1-mini": Price("gpt-4.1-mini", 0.40, 0.10, 1.60, OPENAI),
    "gpt-5-mini": Price("gpt-5-mini", 0.25, 0.025, 2.00, OPENAI),
    "claude-haiku-4.5": Price("claude-haiku-4.5", 1.00, 0.10, 5.00, ANTHROPIC_HAIKU, 1.25),
}

#: Where each price and caching rule was checked (model -> (status, sources)). "unverified":
#: no copy of the provider's own page listing it was found; the third-party copies agree.
PRICE_SOURCES: dict[str, tuple[str, str]] = {
    "gpt-4o-mini": (
        "unverified",
        "0.15 / 0.075 cached / 0.60: third-party copies of openai.com/api/pricing (docs.rs "
        "openai-models 0.1.1; deploybase.ai/articles/openai-pricing, March 2026; oG-Memory "
        "perf/rate_cards.yaml). A May 2026 note (Sraleik/undetermini PRICING.md) says OpenAI's "
        "own pricing page no longer lists the 4.x family.",
    ),
    "gpt-4.1-mini": (
        "unverified",
        "0.40 / 0.10 cached (75% off) / 1.60: explore.oreate.ai (April 2026), deploybase.ai "
        "(March 2026), oG-Memory rate card; one page (studioglobal.ai) lists 0.20 / 0.80, the "
        "Batch price.",
    ),
    "gpt-5-mini": (
        "unverified",
        "0.25 / 0.025 cached (90% off) / 2.00: github/docs data/tables/copilot/"
        "models-and-pricing.yml; deploybase.ai (March 2026); the GPT-5 family's 90% cache "
        "discount in adk-model's OpenAI price table (March 2026).",
    ),
    "claude-haiku-4.5": (
        "confirmed",
        "1 / 5: platform.claude.com/docs/.../models/haiku-4-5/overview (legacy since Haiku 5.5); "
        "5-minute cache write 1.25x = 1.25, cache hit 0.1x = 0.10: platform.claude.com/docs/en/"
        "about-claude/pricing (multipliers), Haiku 4.5 row as copied by docs.electronhub.ai and "
        "claudecodeguides.com; minimum cacheable prompt 4,096 tokens: Anthropic's docs as quoted "
        "in anthropics/anthropic-sdk-python#1194 and docs.litellm.ai (2026-10-07).",
    ),
    "openai-caching-rule": (
        "confirmed",
        "prompts of 1,024+ tokens, hits in 128-token increments, automatic, no write fee: "
        "developers.openai.com/api/docs/guides/prompt-caching and the openai-cookbook "
        "Prompt_Caching_201 (which says it applies to models before GPT-5.6).",
    ),
}


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class PromptBill:
    """The input side of a sequence of calls under one cache rule."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    written_tokens: int = 0  # Anthropic: uncached tokens of prompts long enough to be cached
    calls: int = 0

    @property
    def plain_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens - self.written_tokens

    @property
    def cache_hit_share(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


def bill_prompts(
    prompts: Iterable[Sequence[int]], rule: CacheRule, cache: bool = True
) -> PromptBill:
    """Prompt, cached and written tokens of consecutive calls (``cache=False``: no caching)."""
    bill = PromptBill()
    previous: Sequence[int] | None = None
    for prompt in prompts:
        bill.calls += 1
        bill.prompt_tokens += len(prompt)
        if cache:
            hit = rule.cached(prompt, previous)
            bill.cached_tokens += hit
            if rule.writes_billed and len(prompt) >= rule.min_tokens:
                bill.written_tokens += len(prompt) - hit
        previous = prompt
    return bill


def input_dollars(bill: PromptBill, price: Price) -> float:
    """Dollars for the prompts: cached, written (Anthropic) and plain tokens at their prices."""
    write = price.cache_write if price.cache_write is not None else price.input
    return (
        bill.cached_tokens * price.cached_input
        + bill.written_tokens * write
        + bill.plain_tokens * price.input
    ) / 1e6


def dollars(
    chat: PromptBill,
    chat_price: Price,
    summarizer_input: int,
    summarizer_output: int,
    summarizer_price: Price,
) -> float:
    """Chat-model prompts (with caching as billed) plus summarizer input and output, uncached."""
    summarizer = (
        summarizer_input * summarizer_price.input + summarizer_output * summarizer_price.output
    ) / 1e6
    return input_dollars(chat, chat_price) + summarizer


def shared_prefix_of_messages(
    prompt: Sequence[Sequence[int]], previous: Sequence[Sequence[int]] | None
) -> int:
    """:func:`common_prefix` of two prompts given as per-message token sequences (fast path:
    equal leading messages are skipped whole)."""
    if previous is None:
        return 0
    shared = 0
    for mine, theirs in zip(prompt, previous, strict=False):
        if mine == theirs:
            shared += len(mine)
            continue
        return shared + common_prefix(mine, theirs)
    return shared


#: Price sheets for dollars per conversation: (chat model, summarizer model).
SHEETS: dict[str, tuple[str, str]] = {
    "gpt-4o-mini": ("gpt-4o-mini", "gpt-4o-mini"),
    "gpt-4.1-mini": ("gpt-4.1-mini", "gpt-4.1-mini"),
    "gpt-5-mini": ("gpt-5-mini", "gpt-5-mini"),
    "claude-haiku-4.5": ("claude-haiku-4.5", "claude-haiku-4.5"),
    "gpt-5-mini chat + gpt-4o-mini summarizer": ("gpt-5-mini", "gpt-4o-mini"),
}
CONTEXT_WINDOWS = (8000, 32000, 128000)


def overflow_turns(prompt_tokens: Iterable[int], windows: Sequence[int]) -> dict[str, int]:
    """Per context-window size, how many calls would not fit (the prompt alone exceeds it)."""
    sizes = list(prompt_tokens)
    return {str(w): sum(1 for t in sizes if t > w) for w in windows}


@dataclass(frozen=True)
class Sized:
    """A message as the budget counts it (``budget``) and as the cache compares it (``cache``)."""

    budget: int
    cache: int


def best_cache_share(
    conversations: Sequence[Sequence[Sized]],
    summary: Sized,
    budget: int,
    rule: CacheRule,
    priming: int = 0,
) -> float:
    """The highest cache-hit share (over all ``conversations``, one prompt per message) of prompts
    laid out as a summary (present from the first cut on) followed by a contiguous tail of the
    log, ending at the newest message, whose messages total at most ``budget``: the best choice
    of cut points in hindsight. Billed tokens per prompt = budget sizes + ``priming``; the cache
    compares ``cache`` sizes (as ``token-cost`` does).

    A bound for the layout, not a policy: each turn keeps the previous start (its prompt extends
    the previous one and is cached per ``rule``) or cuts to a later start (nothing cached: the
    summary changes at a cut, and alone it is under any caching minimum here). Every message boundary may be a cut, the summary never changes size, and a
    message that cannot fit is shown alone. Solved exactly by dynamic programming over the start
    of the tail, maximizing ``cached - r * billed`` for the ratio ``r`` (Dinkelbach's method).
    """
    logs = [list(sizes) for sizes in conversations if sizes]
    ratio = 0.0
    for _ in range(20):
        runs = [_best_schedule(sizes, summary, budget, rule, priming, ratio) for sizes in logs]
        cached, billed = sum(c for c, _ in runs), sum(t for _, t in runs)
        share = cached / billed if billed else 0.0
        if share <= ratio + 1e-9:
            return ratio
        ratio = share
    return ratio


_State = tuple[float, int, int, int]  # value, cached, billed, cache length of the last prompt


def _best_schedule(
    sizes: Sequence[Sized], summary: Sized, budget: int, rule: CacheRule, priming: int,
    ratio: float,
) -> tuple[int, int]:  # fmt: skip
    """(cached, billed) tokens of the schedule maximizing ``cached - ratio * billed``."""
    spent, seen = [0], [0]
    for size in sizes:
        spent.append(spent[-1] + size.budget)
        seen.append(seen[-1] + size.cache)

    def prompt(start: int, turn: int, shown: bool) -> tuple[int, int]:
        extra = (summary.budget, summary.cache) if shown else (0, 0)
        return (
            spent[turn + 1] - spent[start] + extra[0],
            seen[turn + 1] - seen[start] + extra[1],
        )

    first = sizes[0].budget + priming
    states: dict[tuple[int, bool], _State] = {
        (0, False): (-ratio * first, 0, first, sizes[0].cache)
    }
    for turn in range(1, len(sizes)):
        nxt: dict[tuple[int, bool], _State] = {}

        for (start, shown), (value, cached, billed, last) in states.items():
            counted, length = prompt(start, turn, shown)
            if counted <= budget:
                bill = counted + priming
                raw = rule.cached_shared(last, length)
                hit = max(0, min(raw, bill - (length - raw)))  # as token-cost bills it
                _offer(
                    nxt,
                    (start, shown),
                    (value + hit - ratio * bill, cached + hit, billed + bill, length),
                )
        # a cut to ``new_start`` may follow any state that starts before it; nothing is cached
        ordered = sorted(states.items(), key=lambda item: item[0][0])
        best: _State | None = None
        index = 0
        for new_start in range(ordered[0][0][0] + 1, turn + 1):
            while index < len(ordered) and ordered[index][0][0] < new_start:
                if best is None or ordered[index][1][0] > best[0]:
                    best = ordered[index][1]
                index += 1
            counted, length = prompt(new_start, turn, True)
            if best is None or (counted > budget and new_start < turn):
                continue
            bill = counted + priming
            _offer(
                nxt, (new_start, True), (best[0] - ratio * bill, best[1], best[2] + bill, length)
            )
        states = nxt
    _, cached, billed, _ = max(states.values())
    return cached, billed


def _offer(states: dict[tuple[int, bool], _State], key: tuple[int, bool], state: _State) -> None:
    if key not in states or states[key][0] < state[0]:
        states[key] = state
