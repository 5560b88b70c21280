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
from collections.abc import Callable, Hashable

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


__all__ = ["BackgroundWorker"]
