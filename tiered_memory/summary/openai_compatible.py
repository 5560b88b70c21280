"""A summarizer for any server that speaks OpenAI's chat-completions protocol.

Ollama (``http://localhost:11434/v1``), vLLM and the llama.cpp server (``http://localhost:8000/v1``
or ``:8080/v1``), LM Studio (``http://localhost:1234/v1``), or OpenAI itself: one ``httpx`` POST to
``{base_url}/chat/completions`` with the shared summary prompt, no framework.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx

from ..config import MemoryConfig
from ..errors import ConfigError, SummarizerError
from .prompt import build_summary_prompt
from .protocol import SummaryRequest

BASE_URL_ENV = "TIERED_MEMORY_SUMMARIZER_BASE_URL"
MODEL_ENV = "TIERED_MEMORY_SUMMARIZER_MODEL"
API_KEY_ENV = "TIERED_MEMORY_SUMMARIZER_API_KEY"

_THINKING = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


class OpenAICompatibleSummarizer:
    """Core ``Summarizer`` on an OpenAI-compatible chat-completions endpoint.

    Args:
        base_url: the API root, up to and including ``/v1`` (``"http://localhost:11434/v1"``).
        model: the model name the server knows (``"qwen2.5:1.5b-instruct"`` on Ollama).
        api_key: sent as ``Authorization: Bearer``; most local servers need none.
        timeout: seconds each network step (connect, send, each read) may take.
        max_output_tokens: the most tokens the model may write (``max_tokens`` of the request);
            default: twice the summary budget (an over-long answer is condensed on the next step).
        temperature: sampling temperature (0: as repeatable as the server allows).

    Raises:
        ConfigError: ``base_url`` is not an http(s) URL, ``model`` is empty, or a bound is not
            positive.

    Example:
        ```python
        summarizer = OpenAICompatibleSummarizer("http://localhost:11434/v1", "qwen2.5:1.5b")
        memory = TieredMemory(session_id="s1", user_id="kha", summarizer=summarizer)
        ```
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_output_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url={base_url!r} is invalid: expected an http(s) URL such as "
                "'http://localhost:11434/v1'"
            )
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model={model!r} is invalid: expected the server's model name")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigError(f"timeout={timeout!r} is invalid: expected seconds > 0")
        if max_output_tokens is not None and (
            not isinstance(max_output_tokens, int) or max_output_tokens < 1
        ):
            raise ConfigError(
                f"max_output_tokens={max_output_tokens!r} is invalid: expected an int >= 1 or None"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model.strip()
        self.timeout = float(timeout)
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self._api_key = api_key or None

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def payload(self, request: SummaryRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        return {
            "model": self.model,
            "messages": build_summary_prompt(request),
            "temperature": self.temperature,
            "max_tokens": self.max_output_tokens or max(64, 2 * request.max_tokens),
            "stream": False,
        }

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def summarize(self, request: SummaryRequest) -> str:
        """Return the new summary text for ``request``.

        Raises:
            SummarizerError: the server is unreachable, too slow, answered an HTTP error, or its
                answer is not a chat completion with a non-empty message.
        """
        return self._post(self.payload(request))

    async def asummarize(self, request: SummaryRequest) -> str:
        """Async :meth:`summarize` (``httpx.AsyncClient``)."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.url, json=self.payload(request), headers=self._headers()
                )
        except httpx.HTTPError as exc:
            raise self._request_error(exc) from None
        return self._summary(response)

    def chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        response_format: dict[str, Any] | None = None,
    ) -> str:
        """One chat completion on this server with any prompt (the LLM fact extractor's call):
        the same request, errors and answer checks as :meth:`summarize`.

        Raises:
            SummarizerError: as :meth:`summarize`.
        """
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": max_tokens,
            "stream": False,
        }
        if response_format is not None:
            payload["response_format"] = response_format
        return self._post(payload)

    def _post(self, payload: dict[str, Any]) -> str:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.post(self.url, json=payload, headers=self._headers())
        except httpx.HTTPError as exc:
            raise self._request_error(exc) from None
        return self._summary(response)

    def _request_error(self, exc: httpx.HTTPError) -> SummarizerError:
        if isinstance(exc, httpx.TimeoutException):
            return SummarizerError(
                f"the summarizer server at {self.base_url} did not answer within {self.timeout}s "
                f"({type(exc).__name__}): is the model loaded, or is the server overloaded? "
                "Raise timeout= for slow local models."
            )
        if isinstance(exc, httpx.ConnectError):
            return SummarizerError(
                f"cannot connect to the summarizer server at {self.base_url}: is the server "
                f"running at {self.base_url}? ({self._scrub(str(exc))})"
            )
        return SummarizerError(
            f"the request to the summarizer server at {self.base_url} failed: "
            f"{type(exc).__name__}: {self._scrub(str(exc))}"
        )

    def _summary(self, response: httpx.Response) -> str:
        if response.status_code >= 400:
            hint = {
                401: "check the API key (TIERED_MEMORY_SUMMARIZER_API_KEY or OPENAI_API_KEY)",
                403: "check the API key (TIERED_MEMORY_SUMMARIZER_API_KEY or OPENAI_API_KEY)",
                404: f"check base_url (it ends in /v1) and that model {self.model!r} exists there",
            }.get(response.status_code, "see the server's log")
            raise SummarizerError(
                f"the summarizer server at {self.base_url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}: {hint}; body: {self._scrub(response.text[:300])!r}"
            )
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SummarizerError(
                f"the summarizer server at {self.base_url} answered something that is not JSON "
                f"({self._scrub(response.text[:120])!r}): is {self.url} an OpenAI-compatible "
                "chat-completions endpoint?"
            ) from None
        content = _content(data)
        if content is None:
            raise SummarizerError(
                f"the summarizer server at {self.base_url} answered JSON without "
                "choices[0].message.content (a string): is it an OpenAI-compatible "
                "chat-completions endpoint?"
            )
        text = _THINKING.sub("", content).strip()
        if not text:
            raise SummarizerError(
                f"the model {self.model!r} at {self.base_url} returned an empty summary"
            )
        return text

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def __repr__(self) -> str:
        key = ", api_key=***" if self._api_key else ""
        return f"OpenAICompatibleSummarizer({self.base_url!r}, {self.model!r}{key})"


def _content(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    return content if isinstance(content, str) else None


def summarizer_from_environment(
    config_model: str,
    base_url: str | None = None,
    model: str | None = None,
    timeout: float = 60.0,
) -> OpenAICompatibleSummarizer | None:
    """The OpenAI-compatible summarizer the settings ask for, or None when none is set.

    ``base_url`` and ``model`` (``MemoryConfig.summarizer_base_url`` / ``summarizer_model``) win
    over ``TIERED_MEMORY_SUMMARIZER_BASE_URL`` / ``TIERED_MEMORY_SUMMARIZER_MODEL``; the model
    defaults to ``config_model``. The key is ``TIERED_MEMORY_SUMMARIZER_API_KEY``, else
    ``OPENAI_API_KEY``, else none (local servers).

    Raises:
        ConfigError: the base URL is set but is not an http(s) URL.
    """
    url = base_url or os.environ.get(BASE_URL_ENV, "").strip() or None
    if url is None:
        return None
    name = model or os.environ.get(MODEL_ENV, "").strip() or config_model
    key = os.environ.get(API_KEY_ENV) or os.environ.get("OPENAI_API_KEY") or None
    return OpenAICompatibleSummarizer(url, name, api_key=key, timeout=timeout)


def summarizer_from_config(config: MemoryConfig) -> OpenAICompatibleSummarizer | None:
    """:func:`summarizer_from_environment` for a ``MemoryConfig`` (its model, base URL, model
    override and ``summarizer_timeout``)."""
    return summarizer_from_environment(
        config.model,
        base_url=config.summarizer_base_url,
        model=config.summarizer_model,
        timeout=config.summarizer_timeout,
    )


__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "MODEL_ENV",
    "OpenAICompatibleSummarizer",
    "summarizer_from_config",
    "summarizer_from_environment",
]
