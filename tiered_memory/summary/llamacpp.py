"""A summarizer on a local GGUF model, run in-process by ``xllamacpp`` (the ``local`` extra).

Nothing is downloaded: the user brings a GGUF file (for instance Qwen2.5-1.5B-Instruct at
Q4_K_M). The model's own chat template formats the shared summary prompt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import threading
from pathlib import Path
from typing import Any

from ..errors import SummarizerError
from .openai_compatible import _content
from .prompt import build_summary_prompt
from .protocol import SummaryRequest

GGUF_MAGIC = b"GGUF"
_INSTALL_HINT = "pip install 'tiered-memory[local]' (the xllamacpp package)"


def check_gguf(model_path: str | Path) -> Path:
    """``model_path`` as a Path, if it is a readable GGUF file.

    Raises:
        SummarizerError: the file is missing, unreadable, or does not start with ``GGUF``.
    """
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise SummarizerError(
            f"GGUF model file not found: {path} (download a GGUF model, e.g. "
            "Qwen2.5-1.5B-Instruct Q4_K_M, and pass its path as model_path)"
        )
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise SummarizerError(f"cannot read the GGUF model file {path}: {exc}") from None
    if magic != GGUF_MAGIC:
        raise SummarizerError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'): llama.cpp needs a "
            "GGUF model, not safetensors/bin weights"
        )
    return path


class LlamaCppSummarizer:
    """Core ``Summarizer`` on a local GGUF model (``xllamacpp``, in this process).

    The model loads on the first call (constructing is cheap and checks the file). Calls run one
    at a time on a worker thread of this summarizer.

    Args:
        model_path: a ``.gguf`` file.
        n_threads: CPU threads for generation (default: llama.cpp's choice). On a busy machine
            use 1-2: more threads than free cores slows generation down sharply.
        timeout: seconds one summary may take; then ``SummarizerError`` (the generation
            itself still finishes in the background, bounded by ``max_output_tokens``).
        max_output_tokens: the most tokens the model may write per summary.
        n_ctx: the context window (prompt + output); a 4,000-token batch needs ~6,000.
        temperature: sampling temperature (0: greedy).
        passive_wait: threads sleep instead of spinning while they wait (kinder to other
            processes on a shared CPU).

    Raises:
        SummarizerError: ``xllamacpp`` is not installed, or ``model_path`` is not a GGUF file.
    """

    def __init__(
        self,
        model_path: str | Path,
        n_threads: int | None = None,
        timeout: float = 300.0,
        max_output_tokens: int = 512,
        n_ctx: int = 8192,
        temperature: float = 0.0,
        passive_wait: bool = True,
    ) -> None:
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise SummarizerError(f"n_threads={n_threads!r} is invalid: expected an int >= 1")
        if timeout <= 0 or max_output_tokens < 1 or n_ctx < 256:
            raise SummarizerError(
                "timeout must be > 0, max_output_tokens >= 1 and n_ctx >= 256 "
                f"(got {timeout}, {max_output_tokens}, {n_ctx})"
            )
        self.model_path = check_gguf(model_path)
        if importlib.util.find_spec("xllamacpp") is None:
            raise SummarizerError(f"LlamaCppSummarizer needs xllamacpp: {_INSTALL_HINT}")
        self.n_threads = n_threads
        self.timeout = float(timeout)
        self.max_output_tokens = max_output_tokens
        self.n_ctx = n_ctx
        self.temperature = temperature
        self.passive_wait = passive_wait
        self._server: Any = None
        self.last_timings: dict[str, Any] = {}
        """llama.cpp's timings of the last answer (``prompt_n``, ``prompt_per_second``,
        ``predicted_n``, ``predicted_per_second``, ...), for benchmarks."""
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tiered-memory-llamacpp"
        )

    def _load(self) -> Any:
        with self._lock:
            if self._server is not None:
                return self._server
            try:
                import xllamacpp
            except ImportError as exc:
                raise SummarizerError(
                    f"LlamaCppSummarizer needs xllamacpp: {_INSTALL_HINT} ({exc})"
                ) from None
            params = xllamacpp.CommonParams()
            params.model.path = str(self.model_path)
            params.n_ctx = self.n_ctx
            params.n_predict = self.max_output_tokens
            params.n_parallel = 1
            params.warmup = False
            if self.n_threads is not None:
                params.cpuparams.n_threads = self.n_threads
                params.cpuparams_batch.n_threads = self.n_threads
            if self.passive_wait:
                params.cpuparams.poll = 0
                params.cpuparams_batch.poll = 0
            try:
                self._server = xllamacpp.Server(params)
            except Exception as exc:
                raise SummarizerError(
                    f"llama.cpp could not load {self.model_path}: {type(exc).__name__}: {exc}"
                ) from None
            return self._server

    def payload(self, request: SummaryRequest) -> dict[str, Any]:
        """The chat-completions request given to llama.cpp (its chat template applies)."""
        return {
            "messages": build_summary_prompt(request),
            "max_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "stream": False,
        }

    def _generate(self, request: SummaryRequest) -> str:
        return self._complete(self.payload(request))

    def _complete(self, payload: dict[str, Any]) -> str:
        server = self._load()
        try:
            answer = server.handle_chat_completions(payload)
        except Exception as exc:
            raise SummarizerError(
                f"llama.cpp failed on {self.model_path.name}: {type(exc).__name__}: {exc}"
            ) from None
        if isinstance(answer, dict) and answer.get("error"):
            raise SummarizerError(f"llama.cpp answered an error: {answer['error']!r}"[:500])
        timings = answer.get("timings") if isinstance(answer, dict) else None
        self.last_timings = dict(timings) if isinstance(timings, dict) else {}
        content = _content(answer)
        if content is None:
            raise SummarizerError(
                f"llama.cpp answered without choices[0].message.content: {str(answer)[:200]!r}"
            )
        text = content.strip()
        if not text:
            raise SummarizerError(f"the model {self.model_path.name} returned an empty summary")
        return text

    def _timed_out(self) -> SummarizerError:
        return SummarizerError(
            f"the local model {self.model_path.name} did not finish a summary within "
            f"{self.timeout}s: raise timeout=, lower max_output_tokens, or use fewer/more free "
            "threads (n_threads)"
        )

    def summarize(self, request: SummaryRequest) -> str:
        """Return the new summary text for ``request``.

        Raises:
            SummarizerError: the model could not load, failed, timed out or wrote nothing.
        """
        future = self._pool.submit(self._generate, request)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise self._timed_out() from None

    async def asummarize(self, request: SummaryRequest) -> str:
        """Async :meth:`summarize`: the generation runs on the worker thread."""
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._generate, request)
        try:
            return await asyncio.wait_for(future, timeout=self.timeout)
        except asyncio.TimeoutError:
            raise self._timed_out() from None

    def chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        response_format: dict[str, Any] | None = None,
    ) -> str:
        """One chat completion on the same loaded model and worker thread, with any prompt (the
        LLM fact extractor's call); output at most ``min(max_tokens, max_output_tokens)``.

        Raises:
            SummarizerError: as :meth:`summarize`.
        """
        payload: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max(1, min(max_tokens, self.max_output_tokens)),
            "temperature": self.temperature,
            "stream": False,
        }
        if response_format is not None:
            payload["response_format"] = response_format
        future = self._pool.submit(self._complete, payload)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise self._timed_out() from None

    def close(self) -> None:
        """Stop the worker thread (the model is freed with this object)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"LlamaCppSummarizer({str(self.model_path)!r}, n_threads={self.n_threads})"


__all__ = ["GGUF_MAGIC", "LlamaCppSummarizer", "check_gguf"]
