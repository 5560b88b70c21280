"""MemoryConfig: every knob of the memory in one frozen, validated object."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .errors import ConfigError

SecretsPolicy = Literal["vault", "redact", "keep", "redact_all"]
CompactionMode = Literal["background", "inline"]


@dataclass(frozen=True)
class MemoryConfig:
    """Budgets and back-ends of a :class:`~tiered_memory.TieredMemory`.

    Args:
        window_tokens: Tier-1 budget: the raw recent messages never exceed it after an add.
        summary_tokens: Tier-2 budget: the running summary is re-condensed above it.
        evict_to: when the window overflows, evict the oldest messages until it is nearest
            ``evict_to * window_tokens`` (a low watermark, so the summarizer is not called each turn;
            ``window.plan_eviction``).
        model: the chat model the context is built for; picks the tiktoken encoding and, with an
            API key, the default summarizer model.
        summarizer_batch_tokens: the most message tokens given to one summarizer call.
        summarizer_timeout: seconds before a summarizer call counts as failed.
        summarizer_retries: extra attempts (with exponential backoff) before compaction is deferred.
        retry_backoff: first backoff delay in seconds.
        recall_k: default number of hits of :meth:`TieredMemory.recall`.
        chroma_host / chroma_port / chroma_ssl / chroma_headers: use a Chroma server
            (``chromadb.HttpClient``) instead of the embedded ``PersistentClient`` under ``path``.
        collection_prefix: prefix of the per-user Chroma collections.
        chroma_open_collections: the most user indexes the embedded Chroma keeps in memory per
            process (least recently used closed first; the first memory on a path sets it).
        session_store_url: SQLAlchemy URL of the session store; default SQLite under ``path``.
        secrets: ``"vault"`` (default) replaces each secret by a stable placeholder in the log,
            the summary and the vector store, keeps its value encrypted in the session store,
            and gives it back in the owner's recall and history (``tiered_memory.vault``);
            ``"redact"`` replaces secrets before summary and vector store; ``"redact_all"`` also
            in the raw session log; ``"keep"`` stores them as given.
        vault_key: the vault's Fernet key (``Fernet.generate_key()``); None reads
            ``TIERED_MEMORY_VAULT_KEY``, else the key file ``path/vault.key`` (made on first use,
            mode 0600). Several workers must share one key.
        index_long_term: embed every message into Tier 3.
        compaction: ``"background"`` (default): ``add()`` stores, plans the eviction and returns;
            the summarizer runs on the process's background worker. ``"inline"``: the ``add()``
            that overflows the window waits for the summarizer (scripts, tests, benchmarks).
        store_timeout: the most seconds one database or Chroma server call may wait (connect,
            lock, statement) before it fails with a ``StoreError`` instead of hanging.
        summary_lag_warning: log a warning when the summary has been behind (messages pending)
            for longer than this many seconds.
        close_timeout: how long ``close()`` waits for this session's background work.
        index_batch: Tier-3 writes are batched: messages are embedded and stored once this many
            wait (and always before a recall, on ``flush()`` and ``close()``), which keeps the
            vector store off the per-message path. Waiting messages are safe in the log.
        secret_detector: what finds secrets (``tiered_memory.redact.SecretDetector``, with
            ``find(text, *, previous, pii)``); None is the built-in detector.
        summarizer_base_url: an OpenAI-compatible server (Ollama, vLLM, llama.cpp server, LM
            Studio: e.g. ``"http://localhost:11434/v1"``) for the default summarizer; overrides
            ``TIERED_MEMORY_SUMMARIZER_BASE_URL``.
        summarizer_model: the model name on that server (default: ``model``); overrides
            ``TIERED_MEMORY_SUMMARIZER_MODEL``.
        facts: extract facts about the user ("lives in Berlin since ...") from each compacted
            batch (``tiered_memory.facts``; one extractor call per batch) and recall them
            alongside turns, current ones first; False turns facts off.
    """

    window_tokens: int = 2000
    summary_tokens: int = 500
    evict_to: float = 0.4
    model: str = "gpt-4o-mini"
    summarizer_batch_tokens: int = 4000
    summarizer_timeout: float = 60.0
    summarizer_retries: int = 2
    retry_backoff: float = 0.5
    recall_k: int = 5
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_ssl: bool = False
    chroma_headers: dict[str, str] | None = field(default=None, hash=False)
    collection_prefix: str = "tiered_memory"
    chroma_open_collections: int = 64
    session_store_url: str | None = None
    secrets: SecretsPolicy = "vault"
    index_long_term: bool = True
    index_batch: int = 16
    compaction: CompactionMode = "background"
    store_timeout: float = 30.0
    summary_lag_warning: float = 300.0
    close_timeout: float = 5.0
    summarizer_base_url: str | None = None
    secret_detector: Any = field(default=None, hash=False, compare=False)
    summarizer_model: str | None = None
    vault_key: str | None = field(default=None, repr=False)
    facts: bool = True

    def __post_init__(self) -> None:
        self._check_types()
        _require(self.window_tokens >= 16, "window_tokens", self.window_tokens, "an int >= 16")
        _require(self.summary_tokens >= 16, "summary_tokens", self.summary_tokens, "an int >= 16")
        _require(0.0 < self.evict_to < 1.0, "evict_to", self.evict_to, "a float in (0, 1)")
        _require(bool(self.model), "model", self.model, "a non-empty model name")
        _require(
            self.summarizer_batch_tokens >= 64,
            "summarizer_batch_tokens",
            self.summarizer_batch_tokens,
            "an int >= 64",
        )
        _require(self.summarizer_timeout > 0, "summarizer_timeout", self.summarizer_timeout, "> 0")
        _require(
            self.summarizer_retries >= 0, "summarizer_retries", self.summarizer_retries, ">= 0"
        )
        _require(self.retry_backoff >= 0, "retry_backoff", self.retry_backoff, ">= 0")
        for name in ("store_timeout", "summary_lag_warning", "close_timeout"):
            _require(getattr(self, name) > 0, name, getattr(self, name), "> 0")
        _require(1 <= self.recall_k <= 1000, "recall_k", self.recall_k, "an int in [1, 1000]")
        _require(
            1 <= self.chroma_port <= 65535, "chroma_port", self.chroma_port, "a port in [1, 65535]"
        )
        _require(
            self.secrets in ("vault", "redact", "keep", "redact_all"),
            "secrets",
            self.secrets,
            "'vault', 'redact', 'keep' or 'redact_all'",
        )
        _require(
            self.compaction in ("background", "inline"),
            "compaction",
            self.compaction,
            "'background' or 'inline'",
        )
        _require(
            bool(self.collection_prefix), "collection_prefix", self.collection_prefix, "non-empty"
        )
        _require(
            1 <= self.index_batch <= 10_000, "index_batch", self.index_batch, "an int in [1, 10000]"
        )
        _require(
            self.chroma_open_collections >= 1,
            "chroma_open_collections",
            self.chroma_open_collections,
            "an int >= 1",
        )

    def _check_types(self) -> None:
        """Each field of its type first, so that a wrong type is a ConfigError naming it."""
        detector = self.secret_detector
        _require(
            detector is None or callable(getattr(detector, "find", None)),
            "secret_detector",
            detector,
            "None or an object with find(text, *, previous, pii) (tiered_memory.redact)",
        )
        for name in _INT_FIELDS:
            value = getattr(self, name)
            _require(isinstance(value, int) and not isinstance(value, bool), name, value, "an int")
        for name in _NUMBER_FIELDS:
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            _require(number and math.isfinite(value), name, value, "a finite number")
        for name in ("chroma_ssl", "index_long_term", "facts"):
            _require(isinstance(getattr(self, name), bool), name, getattr(self, name), "a bool")
        _require(isinstance(self.model, str), "model", self.model, "a model name")
        for name in (
            "chroma_host", "session_store_url", "summarizer_base_url", "summarizer_model",
            "vault_key",
        ):  # fmt: skip
            value = getattr(self, name)
            _require(value is None or isinstance(value, str), name, value, "a string or None")
        url = self.summarizer_base_url
        _require(
            url is None or url.startswith(("http://", "https://")),
            "summarizer_base_url",
            url,
            "an http(s) URL such as 'http://localhost:11434/v1', or None",
        )
        headers = self.chroma_headers
        _require(
            headers is None
            or (
                isinstance(headers, Mapping)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
            ),
            "chroma_headers",
            headers,
            "a dict of strings or None",
        )
        _require(
            isinstance(self.collection_prefix, str)
            and _COLLECTION_PREFIX.fullmatch(self.collection_prefix) is not None
            and ".." not in self.collection_prefix,
            "collection_prefix",
            self.collection_prefix,
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )

    def replace(self, **changes: Any) -> MemoryConfig:
        """A copy with some fields changed (validated again)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown MemoryConfig field(s): {sorted(unknown)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return MemoryConfig(**values)


_INT_FIELDS = (
    "index_batch",
    "window_tokens", "summary_tokens", "summarizer_batch_tokens", "summarizer_retries",
    "recall_k", "chroma_port", "chroma_open_collections",
)  # fmt: skip
_NUMBER_FIELDS = (
    "evict_to", "summarizer_timeout", "retry_backoff", "store_timeout", "summary_lag_warning",
    "close_timeout",
)  # fmt: skip
_COLLECTION_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


_dataclass_init = MemoryConfig.__init__


def _checked_init(self: MemoryConfig, *args: Any, **kwargs: Any) -> None:
    unknown = sorted(set(kwargs) - {f.name for f in fields(MemoryConfig)})
    if unknown:
        raise ConfigError(
            f"unknown MemoryConfig field(s): {unknown}; the fields are "
            f"{', '.join(f.name for f in fields(MemoryConfig))}"
        )
    if len(args) > len(fields(MemoryConfig)):
        raise ConfigError("MemoryConfig takes its fields by name")
    _dataclass_init(self, *args, **kwargs)


MemoryConfig.__init__ = _checked_init  # type: ignore[method-assign]


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"MemoryConfig.{name}={value!r} is invalid: expected {allowed}")


__all__ = ["CompactionMode", "MemoryConfig", "SecretsPolicy"]
