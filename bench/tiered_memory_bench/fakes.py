"""Offline stand-ins for LLMs: fixed-output summarizers that meter what they are sent.

One :class:`Meter` per system counts summarizer calls and input tokens with the core's token
counter, whichever framework calls it (tiered-memory, LangChain, LlamaIndex).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tiered_memory import SummaryRequest, build_summary_prompt

from .common import count_prompt, fixed_text


@dataclass
class Meter:
    """Summarizer calls and the prompt tokens they consumed."""

    calls: int = 0
    input_tokens: int = 0
    delay: float = 0.0  # seconds every call takes (the latency benchmark's slow model)

    def record(self, prompt_tokens: int) -> None:
        self.calls += 1
        self.input_tokens += prompt_tokens
        if self.delay:
            time.sleep(self.delay)


class FixedSummarizer:
    """The core ``Summarizer`` protocol with a fixed ~``output_tokens``-token answer.

    Input tokens are those of ``build_summary_prompt(request)``: what an LLM would be sent.
    """

    def __init__(self, output_tokens: int, meter: Meter | None = None) -> None:
        self.output_tokens = output_tokens
        self.meter = meter or Meter()

    def summarize(self, request: SummaryRequest) -> str:
        self.meter.record(count_prompt(build_summary_prompt(request)))
        return fixed_text(min(self.output_tokens, request.max_tokens))

    async def asummarize(self, request: SummaryRequest) -> str:
        return self.summarize(request)


def _role_of_langchain(message: Any) -> str:
    kind = getattr(message, "type", "human")
    return {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(
        kind, "user"
    )


def langchain_to_dicts(messages: Sequence[Any]) -> list[dict[str, str]]:
    """LangChain messages as role/content dicts (text content only)."""
    out: list[dict[str, str]] = []
    for message in messages:
        content = message.content if isinstance(message.content, str) else str(message.text)
        out.append({"role": _role_of_langchain(message), "content": content})
    return out


def fixed_chat_model(output_tokens: int, meter: Meter) -> Any:
    """A LangChain ``BaseChatModel`` answering a fixed text, metering its prompts."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    text = fixed_text(output_tokens)

    class FixedChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "fixed-output-fake"

        def _generate(
            self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> ChatResult:
            meter.record(count_prompt(langchain_to_dicts(messages)))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    return FixedChatModel()


def fixed_llamaindex_llm(output_tokens: int, meter: Meter) -> Any:
    """A LlamaIndex ``LLM`` answering a fixed text, metering its prompts."""
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
    )
    from llama_index.core.llms.custom import CustomLLM

    text = fixed_text(output_tokens)

    class FixedLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=128_000, num_output=output_tokens, is_chat_model=True)

        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
            meter.record(
                count_prompt(
                    [{"role": str(m.role.value), "content": m.content or ""} for m in messages]
                )
            )
            return ChatResponse(message=ChatMessage(role="assistant", content=text))

        def complete(
            self, prompt: str, formatted: bool = False, **kwargs: Any
        ) -> CompletionResponse:
            meter.record(count_prompt([{"role": "user", "content": prompt}]))
            return CompletionResponse(text=text)

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise NotImplementedError

    return FixedLLM()


def scripted_chat_model(reply: Callable[[list[dict[str, str]]], str]) -> Any:
    """A LangChain chat model whose answer is ``reply(prompt_dicts)`` (QA tests, offline)."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class ScriptedChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "scripted-fake"

        def _generate(
            self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> ChatResult:
            answer = reply(langchain_to_dicts(messages))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer))])

    return ScriptedChatModel()
