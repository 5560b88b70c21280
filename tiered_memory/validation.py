"""Checks at the API's edge: ids, times, batches. Bad input raises a typed error, stores nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypedDict

from .config import MemoryConfig
from .errors import ConfigError, InvalidMessageError
from .messages import Message, MessageFields, MessageLike, ToolCall, coerce_message, make_message
from .recall.records import RecallQuery
from .state import StoredMessage
from .tokens import TokenCounter

MAX_ID_LENGTH = 255


def check_id(value: object, what: str, error: type[Exception] = ConfigError) -> str:
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise error(f"{what} is longer than {MAX_ID_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no store can hold it
        raise error(f"{what} is not valid Unicode text: {exc}") from exc
    return value


def as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidMessageError(f"{name} must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def check_reserve(reserve_tokens: int) -> None:
    if not isinstance(reserve_tokens, int) or reserve_tokens < 0:
        raise InvalidMessageError(f"reserve_tokens must be an int >= 0, got {reserve_tokens!r}")


Prepare = Callable[[Message, "Message | None"], Message]


def secret_filter(config: MemoryConfig) -> Prepare:
    """What a message looks like on its way to the summary and Tier 3 (secrets redacted).

    The returned function takes the message and the one before it in its session (if known): a
    question there ("what's your PIN?") makes a bare reply a secret.
    """
    if config.secrets == "keep":
        return _as_given
    from .redact import redact

    detector = config.secret_detector

    def redacted(message: Message, previous: Message | None = None) -> Message:
        before = previous.content if previous is not None else None
        result = redact(message.content, previous=before, detector=detector)
        calls = tuple(  # tool arguments carry secrets too ({"api_key": "sk-..."})
            ToolCall(c.id, c.name, redact(c.arguments, detector=detector).text)
            for c in message.tool_calls
        )
        if not result.changed and calls == message.tool_calls:
            return message
        return replace(message, content=result.text, tool_calls=calls)

    return redacted


def _as_given(message: Message, previous: Message | None = None) -> Message:
    return message


def prepare_batch(
    messages: Iterable[MessageLike], config: MemoryConfig, counter: TokenCounter
) -> list[StoredMessage]:
    """Validate a batch (all or nothing), redact it for the log if asked, count its tokens."""
    if isinstance(messages, (str, bytes, Mapping, Message)) or not isinstance(messages, Iterable):
        raise InvalidMessageError("add_messages takes a list of messages, not a single one")
    try:
        batch = [coerce_message(m) for m in messages]  # raises before anything is stored
    except RecursionError:
        raise InvalidMessageError("a message is nested too deeply to store") from None
    seen: set[str] = set()
    for message in batch:
        check_id(message.id, "message id", InvalidMessageError)
        if message.id in seen:
            raise InvalidMessageError(f"message id {message.id!r} appears twice in one batch")
        seen.add(message.id)
        for call in message.tool_calls:
            call.check_arguments()
    if config.secrets == "redact_all":
        prepare = secret_filter(config)
        batch = [prepare(m, batch[i - 1] if i else None) for i, m in enumerate(batch)]
    return [StoredMessage(m, counter.count_message(m)) for m in batch]


def recall_query(
    query: object, k: object, session_id: str | None, since: datetime | None,
    until: datetime | None, exclude_window: bool, as_of: datetime | None = None,
    now: datetime | None = None,
) -> RecallQuery:  # fmt: skip
    """A validated recall request (InvalidMessageError names what is wrong)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidMessageError("recall query must be a non-empty string")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
        raise InvalidMessageError(f"k must be an int in [1, 1000], got {k!r}")
    if session_id is not None:
        check_id(session_id, "session_id", InvalidMessageError)
    until_ts = as_utc(until, "until").timestamp() if until is not None else None
    as_of_ts = as_utc(as_of, "as_of").timestamp() if as_of is not None else None
    if as_of_ts is not None:  # turns said up to then (facts: valid then, in the ranking)
        until_ts = as_of_ts if until_ts is None else min(until_ts, as_of_ts)
    return RecallQuery(
        text=query, k=k, session_id=session_id,
        since=as_utc(since, "since").timestamp() if since is not None else None,
        until=until_ts, exclude_window=exclude_window, as_of=as_of_ts,
        now=as_utc(now, "now").timestamp() if now is not None else None,
    )  # fmt: skip


class RecallFilters(TypedDict, total=False):
    """The optional filters of :meth:`TieredMemory.recall`."""

    session_id: str | None
    since: datetime | None
    until: datetime | None
    exclude_window: bool
    as_of: datetime | None
    now: datetime | None


def build_message(role: str, content: str, **fields: Any) -> Message:
    allowed = MessageFields.__annotations__
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidMessageError(f"unknown message field(s) {unknown}; allowed: {sorted(allowed)}")
    calls: Sequence[ToolCall | Mapping[str, Any]] = fields.pop("tool_calls", ())
    return make_message(role, content, tool_calls=calls, **fields)


__all__ = [
    "Prepare",
    "RecallFilters",
    "as_utc",
    "build_message",
    "check_id",
    "check_reserve",
    "prepare_batch",
    "recall_query",
    "secret_filter",
]
