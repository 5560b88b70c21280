"""Tier 2 seam: the Summarizer protocol and the request it answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..messages import Message

SUMMARY_PREFIX = "Previous conversation summary:"


@dataclass(frozen=True)
class SummaryRequest:
    """What a summarizer is asked: extend ``previous_summary`` with ``messages``.

    With no messages the request is to condense ``previous_summary`` to ``max_tokens``.
    """

    previous_summary: str
    messages: tuple[Message, ...]
    max_tokens: int
    model: str = "gpt-4o-mini"

    @property
    def is_condense(self) -> bool:
        return not self.messages


@runtime_checkable
class Summarizer(Protocol):
    """Anything that turns a :class:`SummaryRequest` into the new summary text."""

    def summarize(self, request: SummaryRequest) -> str: ...

    async def asummarize(self, request: SummaryRequest) -> str: ...


__all__ = ["SUMMARY_PREFIX", "Summarizer", "SummaryRequest"]
