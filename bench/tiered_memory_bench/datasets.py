"""One entry point for both datasets: ``--data`` is read once and its format detected."""

from __future__ import annotations

import json
from pathlib import Path

from .locomo import Conversation, load_locomo
from .longmemeval import is_longmemeval, load_longmemeval


class DataError(ValueError):
    """The ``--data`` file is not a dataset this package reads."""


def load_conversations(
    path: str | Path, limit_conversations: int | None = None
) -> list[Conversation]:
    """LoCoMo (a list of samples with ``conversation``) or LongMemEval (a list of questions with
    ``haystack_sessions``), detected from the file's content."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmark data not found at {path}: pass --data PATH (a LoCoMo or LongMemEval JSON)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if is_longmemeval(data):
            return load_longmemeval(path, limit_conversations, data=data)
        if (
            isinstance(data, list)
            and data
            and isinstance(data[0], dict)
            and "conversation" in data[0]
        ):
            return load_locomo(path, limit_conversations)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: malformed benchmark data: {exc}") from exc
    raise DataError(
        f"{path}: neither LoCoMo (samples with 'conversation') nor LongMemEval (questions with "
        "'haystack_sessions')"
    )


def dataset_name(conversations: list[Conversation]) -> str:
    return conversations[0].dataset if conversations else "unknown"
