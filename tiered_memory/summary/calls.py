"""Bounded summarizer attempts: a hung or slow summarizer can delay only its own session.

Each attempt of a sync ``summarize`` runs in a thread of its own (never a shared pool, never the
event loop's executor), and the caller waits at most the timeout. An attempt that times out is
abandoned but may still be running; while it is, the session gets no new attempt (it fails at once
and is retried later), so a summarizer that never returns holds one thread per session, not the
process. A native ``asummarize`` is awaited under ``asyncio.wait_for`` on the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from ..errors import SummarizerError
from .protocol import Summarizer, SummaryRequest


class SyncOnlySummarizer:
    """Marks a summarizer that has only ``summarize``: its async path uses a thread of its own."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def summarize(self, request: SummaryRequest) -> Any:
        return self.inner.summarize(request)

    async def asummarize(self, request: SummaryRequest) -> Any:
        """The sync call in a thread of its own (never the event loop's shared executor)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def attempt() -> None:
            try:
                outcome: tuple[bool, Any] = (True, self.inner.summarize(request))
            except BaseException as exc:
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, future, outcome)

        threading.Thread(target=attempt, name="tm-summarize-sync", daemon=True).start()
        return await future


class SummarizerCall:
    """How one session calls its summarizer (shared by every memory object of the session)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None

    def _start(self, summarizer: Summarizer, request: SummaryRequest) -> tuple[Any, Any]:
        with self._lock:
            if self._running is not None and self._running.is_alive():
                raise SummarizerError(
                    "the previous summarizer call of this session has not returned yet "
                    "(it timed out); the messages stay pending and are retried later"
                )
            done = threading.Event()
            box: dict[str, Any] = {}

            def attempt() -> None:
                try:
                    box["answer"] = summarizer.summarize(request)
                except BaseException as exc:
                    box["error"] = exc
                finally:
                    done.set()

            thread = threading.Thread(target=attempt, name=f"tm-summarize-{self.name}", daemon=True)
            self._running = thread
            thread.start()
        return done, box

    @staticmethod
    def _outcome(box: dict[str, Any]) -> Any:
        if "error" in box:
            raise box["error"]
        return box.get("answer")

    def run(self, summarizer: Summarizer, request: SummaryRequest, timeout: float) -> Any:
        """One attempt on a thread of its own; SummarizerError after ``timeout`` seconds."""
        done, box = self._start(summarizer, request)
        if not done.wait(timeout):
            raise SummarizerError(f"summarizer timed out after {timeout}s")
        return self._outcome(box)

    async def arun(self, summarizer: Summarizer, request: SummaryRequest, timeout: float) -> Any:
        """One attempt without blocking the loop: native ``asummarize``, or a thread of its own."""
        if not isinstance(summarizer, SyncOnlySummarizer):
            try:
                return await asyncio.wait_for(summarizer.asummarize(request), timeout)
            except asyncio.TimeoutError as exc:
                raise SummarizerError(f"summarizer timed out after {timeout}s") from exc
        done, box = self._start(summarizer, request)
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def watch() -> None:
            done.wait(timeout)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, finished)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        await finished
        if not done.is_set():
            raise SummarizerError(f"summarizer timed out after {timeout}s")
        return self._outcome(box)


def _resolve(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


__all__ = ["SummarizerCall", "SyncOnlySummarizer"]
