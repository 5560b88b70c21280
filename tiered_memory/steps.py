"""Sans-I/O plumbing: the memory's logic is written once, as generators that yield effects.

A step generator never does I/O itself. It yields an effect (``Call`` a blocking store function,
``Embed`` texts, ``Summarize`` a request, ``Sleep``) and receives its result (or has its exception
thrown into it). ``run`` performs effects on the calling thread; ``arun`` performs them without
blocking the event loop. That is the only difference between every sync/async twin of the API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .embeddings import Embedder, aembed_documents, aembed_query
from .summary.calls import SummarizerCall
from .summary.protocol import Summarizer, SummaryRequest

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """A blocking function (a store read or write): a worker thread on the async path."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Embed:
    """Embed documents (or one query) with ``embedder``."""

    embedder: Embedder
    texts: list[str]
    query: bool = False


@dataclass(frozen=True)
class Summarize:
    """One summarizer attempt, bounded by its timeout (see ``summary.calls``)."""

    call: SummarizerCall
    summarizer: Summarizer
    request: SummaryRequest
    timeout: float


@dataclass(frozen=True)
class Sleep:
    seconds: float


Effect = Call | Embed | Summarize | Sleep
Steps = Generator[Effect, Any, T]


def perform(effect: Effect) -> Any:
    """Do one effect on this thread."""
    if isinstance(effect, Call):
        return effect.function(*effect.args, **effect.kwargs)
    if isinstance(effect, Embed):
        if effect.query:
            return effect.embedder.embed_query(effect.texts[0])
        return effect.embedder.embed_documents(effect.texts)
    if isinstance(effect, Summarize):
        return effect.call.run(effect.summarizer, effect.request, effect.timeout)
    time.sleep(effect.seconds)
    return None


async def aperform(effect: Effect) -> Any:
    """Do one effect without blocking the event loop."""
    if isinstance(effect, Call):
        return await asyncio.to_thread(effect.function, *effect.args, **effect.kwargs)
    if isinstance(effect, Embed):
        if effect.query:
            return await aembed_query(effect.embedder, effect.texts[0])
        return await aembed_documents(effect.embedder, effect.texts)
    if isinstance(effect, Summarize):
        return await effect.call.arun(effect.summarizer, effect.request, effect.timeout)
    await asyncio.sleep(effect.seconds)
    return None


def _advance(steps: Steps[T], outcome: tuple[bool, Any]) -> tuple[bool, Any]:
    """Feed the last outcome in; ``(True, result)`` when the steps are done, else the next effect."""
    ok, value = outcome
    try:
        return False, (steps.send(value) if ok else steps.throw(value))
    except StopIteration as stop:
        return True, stop.value


def run(steps: Steps[T], pace: Callable[[], object] | None = None) -> T:
    """Drive ``steps`` to the end on this thread; ``pace`` is called before each effect (the
    background worker waits there for a gap between the user's turns)."""
    done, item = _advance(steps, (True, None))
    while not done:
        if pace is not None:
            pace()
        try:
            outcome: tuple[bool, Any] = (True, perform(item))
        except Exception as exc:
            outcome = (False, exc)
        done, item = _advance(steps, outcome)
    return item  # type: ignore[no-any-return]


async def arun(steps: Steps[T]) -> T:
    """Drive ``steps`` to the end without blocking the event loop."""
    done, item = _advance(steps, (True, None))
    while not done:
        try:
            outcome: tuple[bool, Any] = (True, await aperform(item))
        except Exception as exc:
            outcome = (False, exc)
        done, item = _advance(steps, outcome)
    return item  # type: ignore[no-any-return]


__all__ = ["Call", "Effect", "Embed", "Sleep", "Steps", "Summarize", "arun", "perform", "run"]
