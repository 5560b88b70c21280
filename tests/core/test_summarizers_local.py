"""Model-backed summarizers without a hosted API: an OpenAI-compatible server (a real HTTP stub on
127.0.0.1) and a local GGUF model through xllamacpp."""

from __future__ import annotations

import http.server
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chat_stub import Handler, Stub, completion, free_port, ok, reply
from chat_stub import serve as serve  # the fixture

from tiered_memory import MemoryConfig, Message, SummarizerError, SummaryRequest
from tiered_memory.errors import ConfigError
from tiered_memory.summary import (
    OpenAICompatibleSummarizer,
    summarizer_from_config,
    summarizer_from_environment,
)
from tiered_memory.summary import llamacpp as llamacpp_module

KEY = "sk-test-very-secret-key-123456"


def request() -> SummaryRequest:
    return SummaryRequest(
        previous_summary="User: named Kha",
        messages=(Message(role="user", content="I moved to Hanoi in 2021."),),
        max_tokens=100,
    )


# --- OpenAI-compatible server ----------------------------------------------------------------


def test_posts_the_shared_prompt_to_chat_completions(serve: Callable[[Handler], Stub]) -> None:
    stub = serve(ok())
    summarizer = OpenAICompatibleSummarizer(stub.base_url, "qwen2.5:1.5b", api_key=KEY)
    assert summarizer.summarize(request()) == "User: named Kha; moved to Hanoi in 2021"
    sent = stub.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == f"Bearer {KEY}"
    assert sent["body"]["model"] == "qwen2.5:1.5b"
    assert sent["body"]["max_tokens"] == 200  # bounded: twice the summary budget by default
    assert sent["body"]["messages"][0]["role"] == "system"
    assert "Hanoi" in sent["body"]["messages"][1]["content"]


async def test_async_twin_posts_the_same_request(serve: Callable[[Handler], Stub]) -> None:
    stub = serve(ok())
    summarizer = OpenAICompatibleSummarizer(stub.base_url, "m", max_output_tokens=50)
    assert await summarizer.asummarize(request()) == "User: named Kha; moved to Hanoi in 2021"
    assert stub.requests[0]["body"]["max_tokens"] == 50
    assert stub.requests[0]["auth"] is None  # no key: no Authorization header


def test_connection_refused_asks_whether_the_server_runs() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(SummarizerError, match="is the server running at"):
        OpenAICompatibleSummarizer(url, "m", timeout=2).summarize(request())


async def test_async_connection_refused_is_a_summarizer_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(SummarizerError, match="is the server running at"):
        await OpenAICompatibleSummarizer(url, "m", timeout=2).asummarize(request())


def test_http_500_names_the_status_and_never_the_key(serve: Callable[[Handler], Stub]) -> None:
    stub = serve(lambda h, body: reply(h, 500, f'{{"error": "boom for {KEY}"}}'.encode()))
    with pytest.raises(SummarizerError, match="HTTP 500") as info:
        OpenAICompatibleSummarizer(stub.base_url, "m", api_key=KEY).summarize(request())
    assert KEY not in str(info.value)


def test_http_404_points_at_base_url_and_model(serve: Callable[[Handler], Stub]) -> None:
    stub = serve(lambda h, body: reply(h, 404, b'{"error": "model not found"}'))
    with pytest.raises(SummarizerError, match=r"HTTP 404.*'nope' exists"):
        OpenAICompatibleSummarizer(stub.base_url, "nope").summarize(request())


def test_slow_server_times_out(serve: Callable[[Handler], Stub]) -> None:
    def slow(handler: http.server.BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        time.sleep(1.5)
        reply(handler, 200, completion("late"))

    stub = serve(slow)
    started = time.monotonic()
    with pytest.raises(SummarizerError, match=r"did not answer within 0\.3s"):
        OpenAICompatibleSummarizer(stub.base_url, "m", timeout=0.3).summarize(request())
    assert time.monotonic() - started < 1.4


async def test_async_slow_server_times_out(serve: Callable[[Handler], Stub]) -> None:
    def slow(handler: http.server.BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        time.sleep(1.5)
        reply(handler, 200, completion("late"))

    stub = serve(slow)
    with pytest.raises(SummarizerError, match="did not answer within"):
        await OpenAICompatibleSummarizer(stub.base_url, "m", timeout=0.3).asummarize(request())


def test_malformed_json_is_a_summarizer_error(serve: Callable[[Handler], Stub]) -> None:
    stub = serve(lambda h, body: reply(h, 200, b"<html>not json</html>"))
    with pytest.raises(SummarizerError, match="not JSON"):
        OpenAICompatibleSummarizer(stub.base_url, "m").summarize(request())


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"choices": []}', b'{"choices": [{"message": {}}]}', completion(42)],
    ids=["list", "no-choices", "no-content", "not-a-string"],
)
def test_wrong_json_shape_is_a_summarizer_error(
    serve: Callable[[Handler], Stub], body: bytes
) -> None:
    stub = serve(lambda h, _: reply(h, 200, body))
    with pytest.raises(SummarizerError, match=r"choices\[0\]\.message\.content"):
        OpenAICompatibleSummarizer(stub.base_url, "m").summarize(request())


@pytest.mark.parametrize("content", ["", "   \n", "<think>hmm</think>\n"])
def test_empty_content_is_a_summarizer_error(
    serve: Callable[[Handler], Stub], content: str
) -> None:
    stub = serve(ok(content))
    with pytest.raises(SummarizerError, match="empty summary"):
        OpenAICompatibleSummarizer(stub.base_url, "m").summarize(request())


def test_a_leading_think_block_is_not_part_of_the_summary(
    serve: Callable[[Handler], Stub],
) -> None:
    stub = serve(ok("<think>the user said...</think>\nUser: moved to Hanoi"))
    assert OpenAICompatibleSummarizer(stub.base_url, "m").summarize(request()) == (
        "User: moved to Hanoi"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "localhost:11434", "model": "m"},
        {"base_url": "http://x/v1", "model": " "},
        {"base_url": "http://x/v1", "model": "m", "timeout": 0},
        {"base_url": "http://x/v1", "model": "m", "max_output_tokens": 0},
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        OpenAICompatibleSummarizer(**kwargs)


def test_repr_never_shows_the_key() -> None:
    assert KEY not in repr(OpenAICompatibleSummarizer("http://x/v1", "m", api_key=KEY))


def test_environment_selects_the_server_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERED_MEMORY_SUMMARIZER_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("TIERED_MEMORY_SUMMARIZER_MODEL", "llama3.2:3b")
    monkeypatch.delenv("TIERED_MEMORY_SUMMARIZER_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    summarizer = summarizer_from_environment("gpt-4o-mini")
    assert summarizer is not None
    assert summarizer.base_url == "http://127.0.0.1:11434/v1"
    assert summarizer.model == "llama3.2:3b"
    assert summarizer._headers()["Authorization"] == f"Bearer {KEY}"  # OPENAI_API_KEY fallback


def test_no_base_url_means_no_compatible_summarizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIERED_MEMORY_SUMMARIZER_BASE_URL", raising=False)
    assert summarizer_from_environment("gpt-4o-mini") is None
    assert summarizer_from_config(MemoryConfig()) is None


def test_config_fields_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERED_MEMORY_SUMMARIZER_BASE_URL", "http://elsewhere:1/v1")
    monkeypatch.delenv("TIERED_MEMORY_SUMMARIZER_MODEL", raising=False)
    config = MemoryConfig(summarizer_base_url="http://127.0.0.1:8080/v1", model="qwen")
    summarizer = summarizer_from_config(config)
    assert summarizer is not None
    assert (summarizer.base_url, summarizer.model) == ("http://127.0.0.1:8080/v1", "qwen")
    assert summarizer.timeout == config.summarizer_timeout


def test_config_rejects_a_base_url_that_is_not_http() -> None:
    with pytest.raises(ConfigError, match="summarizer_base_url"):
        MemoryConfig(summarizer_base_url="localhost:11434")
    with pytest.raises(ConfigError, match="summarizer_model"):
        MemoryConfig(summarizer_model=3)  # type: ignore[arg-type]


def test_config_from_environment_end_to_end(
    serve: Callable[[Handler], Stub], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = serve(ok("User: moved to Hanoi in 2021"))
    monkeypatch.setenv("TIERED_MEMORY_SUMMARIZER_BASE_URL", stub.base_url)
    monkeypatch.setenv("TIERED_MEMORY_SUMMARIZER_MODEL", "phi3")
    monkeypatch.setenv("TIERED_MEMORY_SUMMARIZER_API_KEY", KEY)
    summarizer = summarizer_from_environment("gpt-4o-mini")
    assert summarizer is not None
    assert summarizer.summarize(request()) == "User: moved to Hanoi in 2021"
    assert stub.requests[0]["body"]["model"] == "phi3"
    assert stub.requests[0]["auth"] == f"Bearer {KEY}"


def test_memory_config_base_url_makes_the_server_the_default_summarizer(
    serve: Callable[[Handler], Stub],
    make_memory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TIERED_MEMORY_SUMMARIZER_BASE_URL", raising=False)
    stub = serve(ok("User: named Kha; moved to Hanoi in 2021"))
    mem = make_memory(summarizer_base_url=stub.base_url, summarizer_model="qwen2.5:1.5b")
    for n in range(12):
        mem.add("user" if n % 2 == 0 else "assistant", f"My name is Kha, message {n} of many.")
    assert mem.stats.summarizer_calls >= 1
    assert mem.summary == "User: named Kha; moved to Hanoi in 2021"
    assert stub.requests[0]["body"]["model"] == "qwen2.5:1.5b"


# --- local GGUF model (xllamacpp) -------------------------------------------------------------


@pytest.fixture
def gguf_header(tmp_path: Path) -> Path:
    """A file with the GGUF magic but no model in it."""
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 56)
    return path


@pytest.fixture
def with_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend xllamacpp is installed (the tests that use this never load a model)."""
    real = llamacpp_module.importlib.util.find_spec
    monkeypatch.setattr(
        llamacpp_module.importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "xllamacpp" else real(name, *a),
    )


def test_llamacpp_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from tiered_memory.summary import LlamaCppSummarizer

    with pytest.raises(SummarizerError, match="GGUF model file not found"):
        LlamaCppSummarizer(model_path=tmp_path / "absent.gguf")


def test_llamacpp_rejects_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    from tiered_memory.summary import LlamaCppSummarizer

    path = tmp_path / "model.safetensors"
    path.write_bytes(b'{"__metadata__": {}}')
    with pytest.raises(SummarizerError, match="is not a GGUF file"):
        LlamaCppSummarizer(model_path=path)


def test_llamacpp_without_the_package_says_how_to_install(
    gguf_header: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiered_memory.summary import LlamaCppSummarizer

    monkeypatch.setattr(llamacpp_module.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SummarizerError, match=r"tiered-memory\[local\]"):
        LlamaCppSummarizer(model_path=gguf_header)


class _Engine:
    """Stands in for ``xllamacpp.Server`` (the model): answers chat completions."""

    def __init__(self, answer: Any, delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.seen: list[dict[str, Any]] = []

    def handle_chat_completions(self, payload: dict[str, Any]) -> Any:
        self.seen.append(payload)
        time.sleep(self.delay)
        return self.answer


def _engine_summarizer(path: Path, engine: _Engine, timeout: float = 5.0) -> Any:
    from tiered_memory.summary import LlamaCppSummarizer

    summarizer = LlamaCppSummarizer(model_path=path, n_threads=1, timeout=timeout)
    summarizer._server = engine
    return summarizer


@pytest.mark.usefixtures("with_package")
def test_llamacpp_sends_the_shared_prompt_with_bounded_output(gguf_header: Path) -> None:
    engine = _Engine(json.loads(completion(" User: moved to Hanoi ")))
    summarizer = _engine_summarizer(gguf_header, engine)
    assert summarizer.summarize(request()) == "User: moved to Hanoi"
    assert engine.seen[0]["max_tokens"] == summarizer.max_output_tokens == 512
    assert engine.seen[0]["messages"][0]["role"] == "system"


@pytest.mark.usefixtures("with_package")
def test_llamacpp_timeout_is_a_summarizer_error(gguf_header: Path) -> None:
    summarizer = _engine_summarizer(gguf_header, _Engine(json.loads(completion("x")), 1.0), 0.2)
    with pytest.raises(SummarizerError, match=r"did not finish a summary within 0\.2s"):
        summarizer.summarize(request())


@pytest.mark.usefixtures("with_package")
async def test_llamacpp_async_timeout_is_a_summarizer_error(gguf_header: Path) -> None:
    summarizer = _engine_summarizer(gguf_header, _Engine(json.loads(completion("x")), 1.0), 0.2)
    with pytest.raises(SummarizerError, match="did not finish a summary"):
        await summarizer.asummarize(request())


@pytest.mark.usefixtures("with_package")
@pytest.mark.parametrize(
    "answer",
    [{"error": {"message": "context overflow"}}, {"choices": []}, json.loads(completion(""))],
    ids=["error", "no-choices", "empty"],
)
def test_llamacpp_bad_answers_are_summarizer_errors(gguf_header: Path, answer: Any) -> None:
    with pytest.raises(SummarizerError):
        _engine_summarizer(gguf_header, _Engine(answer)).summarize(request())


def test_llamacpp_a_corrupt_gguf_fails_to_load_with_a_clear_error(gguf_header: Path) -> None:
    pytest.importorskip("xllamacpp")
    from tiered_memory.summary import LlamaCppSummarizer

    summarizer = LlamaCppSummarizer(model_path=gguf_header, n_threads=1, timeout=60)
    with pytest.raises(SummarizerError, match=r"llama\.cpp could not load"):
        summarizer.summarize(request())


@pytest.mark.skipif(
    not os.environ.get("TIERED_MEMORY_GGUF"),
    reason="set TIERED_MEMORY_GGUF to a GGUF chat model to run the real local-model test",
)
def test_llamacpp_real_model_keeps_the_facts() -> None:
    pytest.importorskip("xllamacpp")
    from tiered_memory.summary import LlamaCppSummarizer

    summarizer = LlamaCppSummarizer(
        model_path=os.environ["TIERED_MEMORY_GGUF"],
        n_threads=int(os.environ.get("TIERED_MEMORY_GGUF_THREADS", "2")),
        timeout=600,
        max_output_tokens=160,
    )
    summary = summarizer.summarize(
        SummaryRequest(
            previous_summary="",
            messages=(
                Message(role="user", content="Hi! My name is Kha and I live in Hanoi."),
                Message(role="assistant", content="Nice to meet you, Kha!"),
                Message(role="user", content="My first demo is due on March 3rd, port 8080."),
            ),
            max_tokens=120,
        )
    )
    assert "Kha" in summary
    assert "8080" in summary or "March" in summary
