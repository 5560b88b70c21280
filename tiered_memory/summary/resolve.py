"""Which summarizer a memory uses: the one given, else an OpenAI-compatible server when a base URL
is configured, else gpt-4o-mini when ``OPENAI_API_KEY`` is set, else the offline one."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..config import MemoryConfig
from ..errors import ConfigError
from .calls import SyncOnlySummarizer
from .extractive import ExtractiveSummarizer
from .protocol import Summarizer

logger = logging.getLogger("tiered_memory")


def resolve_summarizer(summarizer: Any | None, config: MemoryConfig) -> Summarizer:
    """The given summarizer, or the default: OpenAI when a key and the extra are there."""
    if summarizer is not None:
        if not callable(getattr(summarizer, "summarize", None)):
            raise ConfigError(
                f"{type(summarizer).__name__} is not a summarizer: it needs summarize(request) "
                "and asummarize(request) (see tiered_memory.Summarizer)"
            )
        if not callable(getattr(summarizer, "asummarize", None)):
            return SyncOnlySummarizer(summarizer)
        return summarizer  # type: ignore[no-any-return]
    from .openai_compatible import summarizer_from_config

    compatible = summarizer_from_config(config)  # a base URL in the config or the environment
    if compatible is not None:
        return compatible
    if os.environ.get("OPENAI_API_KEY"):
        from ..resources import summarizer_plugin

        loaded = summarizer_plugin("openai", config.model)
        if loaded is not None:
            return loaded  # type: ignore[no-any-return]
        logger.warning(
            "OPENAI_API_KEY is set but the 'openai' extra is not installed "
            "(pip install 'tiered-memory[openai]'); using the offline extractive summarizer"
        )
    return ExtractiveSummarizer(model=config.model)


__all__ = ["resolve_summarizer"]
