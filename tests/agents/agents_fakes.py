"""A fake Agents SDK model: a scripted ``Model`` that records every input it is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from agents import Model, ModelResponse, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

Responder = Callable[[list[dict[str, Any]]], list[Any] | str]


def text_output(text: str, number: int) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_{number}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def call_output(name: str, arguments: str, number: int) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{number}", type="function_call", call_id=f"call_{number}", name=name,
        arguments=arguments,
    )  # fmt: skip


class ScriptedModel(Model):
    """``responder(input_items)`` gives the output items (or a text) of each call."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.inputs: list[list[dict[str, Any]]] = []
        self.instructions: list[str | None] = []
        self.tool_names: list[list[str]] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any | None,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append(items)
        self.instructions.append(system_instructions)
        self.tool_names.append([tool.name for tool in tools])
        answer = self.responder(items)
        output = [text_output(answer, len(self.inputs))] if isinstance(answer, str) else answer
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the tests run the agent without streaming")


def last_user_text(items: list[dict[str, Any]]) -> str:
    users = [i for i in items if i.get("role") == "user"]
    content = users[-1]["content"] if users else ""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
