"""A chat-completions server on 127.0.0.1 for tests (the OpenAI-compatible summarizer and the LLM
fact extractor): real HTTP, canned or slow answers, every request recorded."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Handler = Callable[[http.server.BaseHTTPRequestHandler, dict[str, Any]], None]


def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def completion(content: Any) -> bytes:
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": content}}]}
    ).encode()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout tests) leaves a broken pipe: expected


class Stub:
    """A chat-completions server on a free 127.0.0.1 port; records what it was sent."""

    def __init__(self, handle: Handler) -> None:
        self.requests: list[dict[str, Any]] = []
        stub = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Stub]]:
    stubs: list[Stub] = []

    def start(handle: Handler) -> Stub:
        stubs.append(Stub(handle))
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.close()


def ok(content: Any = "User: named Kha; moved to Hanoi in 2021") -> Handler:
    return lambda handler, body: reply(handler, 200, completion(content))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
