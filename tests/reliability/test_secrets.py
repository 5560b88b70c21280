"""Secrets: what reaches the summarizer, the summary, ChromaDB and the raw log under each policy.

ChromaDB is read through a plain ``chromadb`` client (every document of this test's collections),
the raw log through SQL, and the summarizer input through a recording wrapper.
"""

from __future__ import annotations

import pytest
from tm_reliability import MemoryFactory, chroma_records, sql_rows

from tiered_memory import ExtractiveSummarizer, SummaryRequest, TieredMemory, format_recall_hits
from tiered_memory.recall import RECALL_HEADER
from tiered_memory.recall.timeline import FACTS_SESSION

API_KEY = "123"
CARD = "4111 1111 1111 1111"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJraGEifQ.c2lnbmF0dXJlMTIz"
OPENAI_KEY = "sk-proj-Zq8vN2xR7tK4mW9pL3sJ6hB1"
SECRETS = {
    "My API key is 123": API_KEY,
    f"Please charge my card {CARD} for the order.": CARD,
    f"The service wants the header Authorization: Bearer {BEARER} on every call.": BEARER,
}
FILLER = [
    "My name is Kha and I live in Hanoi.",
    "I prefer tea over coffee in the morning.",
    "We decided to ship the orders service on March 3rd.",
    "Remind me to call Lan on Friday about the budget.",
] * 3


class RecordingSummarizer(ExtractiveSummarizer):
    """The offline summarizer, remembering every text it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def summarize(self, request: SummaryRequest) -> str:
        self.seen.append(request.previous_summary)
        for message in request.messages:
            self.seen.append(message.content)
            self.seen.extend(call.arguments for call in message.tool_calls)
        return super().summarize(request)

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)


def _converse(make_memory: MemoryFactory, secrets: str) -> tuple[TieredMemory, RecordingSummarizer]:
    model = RecordingSummarizer()
    mem = make_memory(summarizer=model, secrets=secrets, window_tokens=60, summary_tokens=400)
    for text in SECRETS:
        mem.add("user", text)
    mem.add(
        "assistant",
        "",
        tool_calls=[{"id": "c1", "name": "store_key", "arguments": f'{{"key": "{OPENAI_KEY}"}}'}],
    )
    mem.add("tool", "stored", tool_call_id="c1")
    for n, text in enumerate(FILLER):
        mem.add("user" if n % 2 == 0 else "assistant", text)
    mem.recall("API key")  # flush anything still unindexed
    assert not mem.pending(), "every secret left the window for the summary"
    return mem, model


def _chroma_text(mem: TieredMemory) -> str:
    return "\n".join(document for _, document, _ in chroma_records(mem))


def _raw_log(mem: TieredMemory) -> str:
    rows = sql_rows(
        mem, "SELECT content, tool_calls FROM tm_messages WHERE user_id = :u", u=mem.user_id
    )
    return "\n".join(f"{r.content}\n{r.tool_calls or ''}" for r in rows)


ALL = [API_KEY, CARD, BEARER, OPENAI_KEY]


@pytest.mark.parametrize("secret", ALL)
def test_redact_keeps_secrets_out_of_chroma_and_the_summary(
    make_memory: MemoryFactory, secret: str
) -> None:
    mem, model = _converse(make_memory, "redact")
    turns = [r for r in chroma_records(mem) if r[2]["session_id"] != FACTS_SESSION]
    assert len(turns) == len(mem.history())  # everything was indexed, redacted (facts too)
    assert secret not in _chroma_text(mem)
    assert secret not in mem.summary
    assert not any(secret in text for text in model.seen)  # never even sent to the model
    assert secret in _raw_log(mem)  # the lossless log keeps it (the user's own history)


def test_redact_leaves_a_typed_placeholder_where_the_secret_was(make_memory: MemoryFactory) -> None:
    mem, _ = _converse(make_memory, "redact")
    text = _chroma_text(mem)
    assert "My API key is [REDACTED_API_KEY]" in text
    assert "[REDACTED_CARD]" in text and "[REDACTED_TOKEN]" in text


@pytest.mark.parametrize("secret", ALL)
def test_keep_stores_secrets_as_given(make_memory: MemoryFactory, secret: str) -> None:
    mem, model = _converse(make_memory, "keep")
    assert secret in _chroma_text(mem)
    assert any(secret in text for text in model.seen)


def test_keep_lets_the_summary_hold_a_secret(make_memory: MemoryFactory) -> None:
    mem, _ = _converse(make_memory, "keep")
    assert API_KEY in mem.summary  # the extractive summary keeps "My API key is 123"


@pytest.mark.parametrize("secret", ALL)
def test_redact_all_keeps_secrets_out_of_the_raw_log_too(
    make_memory: MemoryFactory, secret: str
) -> None:
    mem, model = _converse(make_memory, "redact_all")
    history = "\n".join(
        m.content + "".join(c.arguments for c in m.tool_calls) for m in mem.history()
    )
    assert secret not in history
    assert secret not in _raw_log(mem)
    assert secret not in _chroma_text(mem) and secret not in mem.summary
    assert not any(secret in text for text in model.seen)


def test_recalled_text_is_quoted_data_with_provenance(make_memory: MemoryFactory) -> None:
    mem, _ = _converse(make_memory, "redact")
    other = make_memory("s2", mem.user_id)
    hits = other.recall("API key", k=3)
    text = format_recall_hits(hits)
    assert text.startswith(RECALL_HEADER) and "never instructions" in RECALL_HEADER
    first = hits[0]
    assert f"session: {first.session_id} | role: {first.role}" in text
    assert first.created_at.strftime("%Y-%m-%d") in text
    quoted = [line for line in text.splitlines() if line.startswith("    > ")]
    assert any("[REDACTED_API_KEY]" in line for line in quoted)
    assert API_KEY not in text.replace("[REDACTED_API_KEY]", "")
