"""Bad input, fuzzed: every public entry point either succeeds or raises a TieredMemoryError
subclass, and a failed call changes nothing (no partial write). The README's "Bad input" table
lists what each kind of bad input gets; the deterministic tests below pin each of its rows."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tm_reliability import MemoryFactory, chroma_records

from tiered_memory import (
    ConfigError,
    InvalidMessageError,
    MemoryConfig,
    Message,
    StoreError,
    TieredMemory,
    TieredMemoryError,
    ToolCall,
)
from tiered_memory.tokens import token_counter

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.just(object()),
)
unicode_text = st.text(st.characters(exclude_categories=()), max_size=300)  # surrogates, NUL
ids = st.one_of(unicode_text, st.text(min_size=250, max_size=260), junk)
roles = st.one_of(st.sampled_from(["user", "assistant", "system", "tool", "USER", ""]), junk)
tool_call_dicts = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=8), junk), "name": st.one_of(st.text(max_size=8), junk)},
    optional={"arguments": st.one_of(st.text(max_size=30), junk)},
)
tool_calls = st.one_of(st.just(()), st.lists(st.one_of(tool_call_dicts, junk), max_size=3), junk)
metadata = st.one_of(
    st.none(), st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), junk)), junk
)
moments = st.one_of(
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=7))])),
    junk,
)
message_dicts = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": st.one_of(unicode_text, junk),
        "name": st.one_of(st.none(), unicode_text, junk),
        "tool_calls": tool_calls,
        "tool_call_id": st.one_of(st.none(), unicode_text, junk),
        "id": ids,
        "created_at": st.one_of(moments, st.text(max_size=30)),
        "metadata": metadata,
    },
)


def _state(mem: TieredMemory) -> tuple[Any, ...]:
    """Everything a failed call must leave untouched."""
    state = mem.store.load(mem.user_id, mem.session_id)
    return (mem.history(), state.summary, state.window, state.pending, state.next_seq)


def _typed_or_ok(mem: TieredMemory, call: Callable[[], Any]) -> Any:
    """Run ``call``: a TieredMemoryError leaves the memory as it was; any other exception fails."""
    before = _state(mem)
    try:
        return call()
    except TieredMemoryError:
        assert _state(mem) == before, "a failed call changed the memory"
        return None


def _lossless(mem: TieredMemory, before: list[Message], added: list[Message]) -> None:
    known = {m.id for m in before}
    expected = before + [m for m in added if m.id not in known]
    assert [m.id for m in mem.history()] == [m.id for m in expected]
    assert [m.content for m in mem.history()] == [m.content for m in expected]


@FUZZ
@given(
    role=roles,
    content=st.one_of(unicode_text, junk),
    name=st.one_of(st.none(), unicode_text, junk),
    calls=tool_calls,
    call_id=st.one_of(st.none(), unicode_text, junk),
    message_id=st.one_of(st.none(), ids),
    created_at=moments,
    meta=metadata,
)
def test_add_stores_exactly_the_message_or_raises_typed_and_stores_nothing(
    make_memory: MemoryFactory,
    role: Any,
    content: Any,
    name: Any,
    calls: Any,
    call_id: Any,
    message_id: Any,
    created_at: Any,
    meta: Any,
) -> None:
    mem = make_memory("fuzz-add")
    before = mem.history()
    stored = _typed_or_ok(
        mem,
        lambda: mem.add(
            role,
            content,
            name=name,
            tool_calls=calls,
            tool_call_id=call_id,
            id=message_id,
            created_at=created_at,
            metadata=meta,
        ),
    )
    if stored is not None:
        _lossless(mem, before, [stored])


@FUZZ
@given(batch=st.one_of(st.lists(st.one_of(message_dicts, junk), max_size=6), junk, unicode_text))
def test_add_messages_stores_the_whole_batch_or_none_of_it(
    make_memory: MemoryFactory, batch: Any
) -> None:
    mem = make_memory("fuzz-batch")
    before = mem.history()
    stored = _typed_or_ok(mem, lambda: mem.add_messages(batch))
    if stored is not None:
        _lossless(mem, before, stored)


turn = st.one_of(
    st.tuples(st.sampled_from(["user", "assistant", "system"]), unicode_text),
    st.tuples(st.just("call"), st.sampled_from(["c1", "c2", "c3"])),
    st.tuples(st.just("tool"), st.sampled_from(["c1", "c2", "c3", "nope"])),
)


@FUZZ
@given(turns=st.lists(turn, min_size=1, max_size=25), window=st.integers(16, 200))
def test_random_role_sequences_keep_history_lossless_and_context_whole(
    make_memory: MemoryFactory, turns: list[tuple[str, str]], window: int
) -> None:
    import uuid

    mem = make_memory(uuid.uuid4().hex, window_tokens=window, summary_tokens=60)
    added: list[Message] = []
    for kind, value in turns:
        before = mem.history()
        if kind == "call":
            call = ToolCall(value, "lookup", '{"q": 1}')
            stored = _typed_or_ok(mem, lambda c=call: mem.add("assistant", "", tool_calls=[c]))
        elif kind == "tool":
            stored = _typed_or_ok(mem, lambda v=value: mem.add("tool", "42", tool_call_id=v))
        else:
            stored = _typed_or_ok(mem, lambda k=kind, v=value: mem.add(k, v))
        if stored is not None:
            _lossless(mem, before, [stored])
            added.append(stored)
        context = mem.context_messages()
        body = [m for m in context if not m.id.startswith("summary:")]
        assert not body or body[0].role != "tool", "the context starts with an orphan tool result"
        assert token_counter().count_messages(context) <= window + 60 + 23  # + summary header
    assert [m.id for m in mem.history()] == [m.id for m in added]


@FUZZ
@given(
    query=st.one_of(unicode_text, junk),
    k=st.one_of(st.none(), st.integers(-5, 2000), junk),
    session_id=st.one_of(st.none(), ids),
    since=moments,
    until=moments,
    exclude_window=st.one_of(st.booleans(), junk),
)
def test_recall_returns_hits_or_raises_typed(
    make_memory: MemoryFactory,
    query: Any,
    k: Any,
    session_id: Any,
    since: Any,
    until: Any,
    exclude_window: Any,
) -> None:
    mem = make_memory("fuzz-recall")
    if not mem.history():
        mem.add("user", "My name is Kha and my deadline is March 3rd.")
    hits = _typed_or_ok(
        mem,
        lambda: mem.recall(
            query,
            k,
            session_id=session_id,
            since=since,
            until=until,
            exclude_window=exclude_window,
        ),
    )
    assert hits is None or (isinstance(hits, list) and all(h.user_id == "kha" for h in hits))


@FUZZ
@given(reserve=st.one_of(st.integers(-(10**12), 10**12), junk))
def test_context_returns_messages_or_raises_typed(make_memory: MemoryFactory, reserve: Any) -> None:
    mem = make_memory("fuzz-context")
    if not mem.history():
        for n in range(8):
            mem.add("user", f"Turn {n}: my deadline is March {n + 1}.")
    view = _typed_or_ok(mem, lambda: mem.context(reserve))
    assert view is None or isinstance(view, list)


@FUZZ
@given(message_id=st.one_of(st.none(), ids), user_id=st.one_of(st.none(), ids))
def test_forget_removes_only_what_it_names_or_raises_typed(
    make_memory: MemoryFactory, message_id: Any, user_id: Any
) -> None:
    assume(user_id != "kha")
    mem = make_memory("fuzz-forget")
    keep = mem.add("user", "Keep me: my deadline is March 3rd.", id="keep-me")
    removed = _typed_or_ok(mem, lambda: mem.forget(message_id=message_id, user_id=user_id))
    assert removed in (None, 0)  # nothing else of this user matches a random id
    assert keep.id in {m.id for m in mem.history()}


@FUZZ
@given(session_id=ids, user_id=ids, config=st.one_of(st.none(), junk))
def test_opening_a_memory_succeeds_or_raises_typed(
    tmp_path: Path, session_id: Any, user_id: Any, config: Any
) -> None:
    try:
        mem = TieredMemory(session_id, user_id, tmp_path, config)
    except TieredMemoryError:
        return
    assert mem.history() == []


config_values = st.one_of(junk, st.integers(-5, 100_000), st.floats(allow_nan=True), unicode_text)


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(MemoryConfig.__dataclass_fields__)), config_values, max_size=3
    )
)
def test_config_values_are_accepted_or_rejected_with_config_error(changes: dict[str, Any]) -> None:
    try:
        MemoryConfig(**changes)
    except ConfigError as exc:
        assert any(name in str(exc) for name in changes)  # the error names the field


@FUZZ
@given(data=st.one_of(message_dicts, junk))
def test_message_from_dict_builds_or_raises_invalid_message_error(data: Any) -> None:
    try:
        message = Message.from_dict(data)
    except InvalidMessageError:
        return
    assert Message.from_dict(message.to_dict()) == message  # what was accepted round-trips


# --- each row of the README table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("user", ""), {}),  # empty content
        (("user", "   \n"), {}),  # whitespace only
        (("user", None), {}),  # not a string
        (("user", b"bytes"), {}),
        (("robot", "hi"), {}),  # unknown role
        (("USER", "hi"), {}),
        (("", "hi"), {}),
        (("tool", "42"), {}),  # tool result without tool_call_id
        (("user", "hi"), {"tool_calls": [{"id": "c1", "name": "f"}]}),  # tool_calls on a user msg
        (("assistant", "hi"), {"tool_calls": 5}),  # tool_calls not a list
        (("assistant", "hi"), {"tool_calls": [{"name": "f"}]}),  # a call without id
        (("assistant", "hi"), {"tool_calls": [{"id": "c1"}]}),  # a call without name
        (("assistant", "hi"), {"tool_calls": [{"id": "c1", "name": "f", "arguments": {1: {2}}}]}),
        (("user", "hi"), {"name": 5}),  # not a string
        (("user", "hi"), {"id": 5}),
        (("tool", "42"), {"tool_call_id": 5}),
        (("user", "hi"), {"id": "\udc80"}),  # not encodable as UTF-8
        (("user", "hi"), {"id": ""}),  # empty id
        (("user", "hi"), {"id": "x" * 256}),  # id longer than 255
        (("user", "hi"), {"name": ""}),
        (("user", "hi"), {"created_at": "yesterday"}),
        (("user", "hi"), {"metadata": {"a": {1, 2}}}),  # not JSON
        (("user", "hi"), {"metadata": ["not", "a", "mapping"]}),
        (("user", "\ud800 lone surrogate"), {}),  # not encodable as UTF-8
    ],
)
def test_each_bad_message_gets_invalid_message_error_and_changes_nothing(
    make_memory: MemoryFactory, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    mem = make_memory()
    mem.add("user", "My name is Kha.")
    before = _state(mem)
    with pytest.raises(InvalidMessageError):
        mem.add(*args, **kwargs)
    assert _state(mem) == before


@pytest.mark.parametrize(
    "batch",
    [
        [{"role": "user", "content": "ok"}, {"role": "user", "content": ""}],
        [
            {"role": "user", "content": "ok", "id": "m1"},
            {"role": "user", "content": "x", "id": "m1"},
        ],
        [{"role": "user", "content": "ok"}, 42],
        None,
        Message(role="user", content="a single message is not a batch"),
        "a string is not a batch",
        {"role": "user", "content": "a single dict is not a batch"},
    ],
)
def test_a_bad_batch_stores_none_of_its_messages(make_memory: MemoryFactory, batch: Any) -> None:
    mem = make_memory()
    with pytest.raises(InvalidMessageError):
        mem.add_messages(batch)
    assert mem.history() == [] and mem.store.load(mem.user_id, mem.session_id).next_seq == 0


def test_an_empty_batch_is_a_no_op(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    assert mem.add_messages([]) == []
    assert mem.history() == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.recall(""), InvalidMessageError),
        (lambda m: m.recall(5), InvalidMessageError),
        (lambda m: m.recall("x", k=1.5), InvalidMessageError),
        (lambda m: m.recall("x", k=0), InvalidMessageError),
        (lambda m: m.recall("x", k=1001), InvalidMessageError),
        (lambda m: m.recall("x", since="2024-01-01"), InvalidMessageError),
        (lambda m: m.recall("x", session_id=""), InvalidMessageError),
        (lambda m: m.context(-1), InvalidMessageError),
        (lambda m: m.context("a"), InvalidMessageError),
        (lambda m: m.forget(), InvalidMessageError),
        (lambda m: m.forget(message_id="a", user_id="kha"), InvalidMessageError),
        (lambda m: m.forget(user_id="someone-else"), InvalidMessageError),
    ],
)
def test_bad_reads_and_forgets_get_typed_errors(
    make_memory: MemoryFactory, call: Callable[[TieredMemory], Any], error: type[Exception]
) -> None:
    mem = make_memory()
    mem.add("user", "My name is Kha.")
    before = _state(mem)
    with pytest.raises(error):
        call(mem)
    assert _state(mem) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"session_id": ""},
        {"user_id": "   "},
        {"user_id": 5},
        {"session_id": "s" * 256},
        {"user_id": "\udcff"},
        {"config": {"window_tokens": 100}},
        {"summarizer": object()},
        {"embedder": 42},
        {"path": 42},
    ],
)
def test_a_bad_memory_argument_gets_config_error(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"session_id": "s1", "user_id": "kha", "path": tmp_path, **kwargs}
    with pytest.raises(ConfigError):
        TieredMemory(**arguments)


@pytest.mark.parametrize(
    "changes",
    [
        {"window_tokens": 8},
        {"window_tokens": "2000"},
        {"window_tokens": 100.5},
        {"evict_to": 1.0},
        {"summarizer_timeout": float("inf")},
        {"chroma_port": 70000},
        {"secrets": "maybe"},
        {"collection_prefix": "has spaces"},
        {"session_store_url": 5},
        {"index_long_term": "no"},
    ],
)
def test_a_bad_config_value_gets_config_error_naming_it(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(changes))):
        MemoryConfig(**changes)


def test_an_unusable_session_store_url_gets_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        TieredMemory("s1", "kha", tmp_path, MemoryConfig(session_store_url="nosuchdb://x"))


def test_a_huge_message_is_stored_whole(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    huge = "My name is Kha. " + "lorem ipsum dolor " * 60_000  # ~1 MB
    mem.add("user", huge)
    mem.add("user", "and a small one")
    assert mem.history()[0].content == huge
    assert 0 < mem.stats.summary_tokens <= mem.config.summary_tokens  # summarized, in budget
    # Tier 3 holds its beginning and says where the rest is (the embedder reads ~25k characters)
    (doc,) = [doc for _, doc, _ in chroma_records(mem) if doc.startswith("My name is Kha.")]
    assert len(doc) < len(huge) and doc.endswith("more characters in the session log]")


@pytest.mark.parametrize(
    "text",
    [
        "4" * 200_000,
        "password: " * 20_000,
        "sk-" + "a1" * 100_000,
        "Bearer " * 30_000,
        "-----BEGIN PRIVATE KEY-----" + "A" * 200_000,
        string.punctuation * 6_000,
    ],
    ids=["digits", "cues", "key-like", "bearer", "pem", "punctuation"],
)
def test_adversarial_text_is_stored_whole(make_memory: MemoryFactory, text: str) -> None:
    mem = make_memory()
    mem.add("user", text)
    assert mem.history()[0].content == text


def test_nul_characters_round_trip(make_memory: MemoryFactory) -> None:
    mem = make_memory("s\x00nul", "kha\x00")
    text = "before\x00after \ue000 \ue0000"  # NUL and the PostgreSQL escape character
    stored = mem.add("user", text, id="id\x00", name="n\x00")
    assert mem.history() == [stored]
    assert mem.recall("before after", exclude_window=False)[0].message_id == "id\x00"
    assert mem.forget(message_id="id\x00") == 1 and mem.history() == []


def test_a_reserve_larger_than_the_window_leaves_only_the_summary(
    make_memory: MemoryFactory,
) -> None:
    mem = make_memory()
    for n in range(12):
        mem.add("user", f"Turn {n}: my name is Kha and my deadline is March {n + 1}.")
    view = mem.context_messages(reserve_tokens=10**12)
    assert [m.id for m in view] == [f"summary:{mem.session_id}"]


def test_forgetting_an_unknown_message_removes_nothing(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    mem.add("user", "My name is Kha.")
    before = _state(mem)
    assert mem.forget(message_id="no-such-message") == 0
    assert _state(mem) == before


def test_a_known_id_is_not_stored_twice(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    first = mem.add("user", "hello there", id="m1")
    mem.add("user", "hello there again", id="m1")
    assert mem.history() == [first]


def test_naive_datetimes_are_taken_as_utc(make_memory: MemoryFactory) -> None:
    mem = make_memory()
    stored = mem.add("user", "hi", created_at=datetime(2024, 1, 1, 12, 0))
    assert stored.created_at == datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert mem.history()[0].created_at == stored.created_at
