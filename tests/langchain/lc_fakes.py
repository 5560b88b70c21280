"""Fake chat models of the LangChain adapter tests (importable: ``from lc_fakes import ...``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Responder = Callable[[list[BaseMessage]], AIMessage | str]


class ScriptedChatModel(BaseChatModel):
    """Fake tool-calling chat model: ``responder(messages)`` decides each answer.

    Records every prompt it receives (``calls``) and the tools bound to it (``tool_names``).
    """

    responder: Responder
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        answer = self.responder(list(messages))
        if isinstance(answer, str):
            answer = AIMessage(content=answer)
        return ChatResult(generations=[ChatGeneration(message=answer)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        self.tool_names = [getattr(t, "name", None) or t.get("name", "") for t in tools]
        return self


def echo(messages: list[BaseMessage]) -> str:
    """Answer with a short acknowledgement of the last message."""
    return f"Noted: {messages[-1].text[:40]}"
