"""The background worker: runs the summarizer (and Tier-3 indexing) off the request path.

One per process (owned by :class:`~tiered_memory.resources.Resources`), shared by every session:
a bounded pool of daemon threads, at most one job per session at a time (a session submitted while
its job runs is run once more afterwards), so sessions never race each other's jobs and a slow
session holds one thread, never the pool. Threads are daemons: a process may exit with work
pending, which is safe because pending work lives in the session store and the next write or the
next process resumes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

logger = logging.getLogger("tiered_memory")

Job = Callable[[], None]


class BackgroundWorker:
    """A keyed job queue over at most ``max_threads`` daemon threads."""

    def __init__(self, max_threads: int = 16) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be >= 1")
        self.max_threads = max_threads
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._queued: dict[Hashable, Job] = {}
        self._again: dict[Hashable, Job] = {}
        self._running: set[Hashable] = set()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(self, key: Hashable, job: Job) -> bool:
        """Run ``job`` for ``key`` soon; False once the worker is closed."""
        with self._cond:
            if self._closed:
                return False
            if key in self._running:
                self._again[key] = job
            elif key in self._queued:
                self._queued[key] = job
            else:
                self._queued[key] = job
                self._queue.append(key)
                if self._idle == 0 and len(self._threads) < self.max_threads:
                    thread = threading.Thread(
                        target=self._loop, name=f"tm-worker-{len(self._threads)}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()
            self._cond.notify()
            return True

    def busy(self, key: Hashable) -> bool:
        with self._cond:
            return self._busy(key)

    def _busy(self, key: Hashable) -> bool:
        return key in self._running or key in self._queued or key in self._again

    def wait(self, key: Hashable, timeout: float | None = None) -> bool:
        """Wait until ``key`` has no job queued or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy(key), timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Take no new jobs, drop the queued ones, wait up to ``timeout`` s for the running ones.

        Returns True when nothing was left running. What was dropped stays pending in the store.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._queued.clear()
            self._again.clear()
            self._cond.notify_all()
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                if not self._queue:
                    return
                key = self._queue.popleft()
                job = self._queued.pop(key)
                self._running.add(key)
            try:
                job()
            except Exception:
                logger.exception("background job for %r failed; its work stays pending", key)
            finally:
                with self._cond:
                    self._running.discard(key)
                    again = self._again.pop(key, None)
                    if again is not None and not self._closed:
                        self._queued[key] = again
                        self._queue.append(key)
                    self._cond.notify_all()


#: Background work waits at most this long for a gap between the user's turns, then runs anyway.
MAX_DEFER = 2.0
#: A gap: no turn in flight, and the last one ended at least this long ago.
QUIET = 0.02


class Foreground:
    """The user's turns in flight in this process, so background work can run between them.

    Python threads share one interpreter lock, and embedded Chroma holds it while it writes
    (tens of milliseconds, the fsync included); a CPU-bound summarizer competes for it too. Work
    done in the gaps between turns costs the turns nothing: a chat app is idle while its model
    answers, so the gaps are long. A busy process has none; there the work waits at most
    ``max_defer`` seconds and then runs anyway, so it is delayed, never starved.
    """

    def __init__(self, quiet: float = QUIET, max_defer: float = MAX_DEFER) -> None:
        self.quiet = quiet
        self.max_defer = max_defer
        self._cond = threading.Condition()
        self._active = 0
        self._last_end = 0.0
        self._stopped = False

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Mark one foreground call (``add``, ``context``, ``recall``) for its duration."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._last_end = time.monotonic()
                self._cond.notify_all()

    def stop(self) -> None:
        """No more waiting: the process is shutting down and its jobs should finish now."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def deadline(self) -> float:
        """The latest a background job starting now waits for a gap (monotonic seconds)."""
        return time.monotonic() + self.max_defer

    def wait_gap(self, deadline: float) -> bool:
        """Wait for a gap between turns, at most until ``deadline``; False if none came."""
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                if now >= deadline:
                    return False
                if self._active == 0:
                    idle = now - self._last_end
                    if idle >= self.quiet:
                        return True
                    self._cond.wait(min(self.quiet - idle, deadline - now))
                else:
                    self._cond.wait(deadline - now)
            return True


__all__ = ["MAX_DEFER", "QUIET", "BackgroundWorker", "Foreground"]
