"""A real OpenAI- and Anthropic-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

    POST /v1/chat/completions   the OpenAI Chat Completions shape (streamed or not)
    POST /v1/messages           the Anthropic Messages shape (streamed or not)

It answers "reply to: <prompt>" with the requested model, counts tokens as words, and
records what it saw: every request, the most requests it ever had in flight at once,
and the clients that went away before their answer was complete. Tests script faults
with `plan(...)`: the next requests get the planned behaviours in order.

HTTP/1.1 with keep-alive (answers carry Content-Length, streams are chunked), on a
ThreadingHTTPServer whose threads are daemons and whose idle connections time out, so
it stops by itself. `python tests/ai_server.py --delay 0.2` runs it in its own process
(for the benchmark): it prints its base URL and serves until its stdin closes.
"""
from __future__ import annotations

import argparse
import gzip
import json
import select
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    """A normal answer, after `delay` seconds (the server's default delay when None)."""
    delay: float | None = None
    text: str | None = None             # instead of "reply to: <prompt>"
    usage: bool = True
    gzip: bool = False                  # Content-Encoding: gzip (streams flushed per event)


@dataclass
class Status:
    """An error status with the provider's error body."""
    code: int
    message: str = "something went wrong"
    headers: dict = field(default_factory=dict)


@dataclass
class Slow:
    """Send nothing for `seconds` (watching for the client to go away), then answer."""
    seconds: float


@dataclass
class CutStream:
    """Stream `pieces` pieces of the answer, then stop without the final event.

    By closing the connection mid-body, or (`close=False`) by ending the HTTP body cleanly.
    """
    pieces: int = 2
    close: bool = True


@dataclass
class StreamError:
    """Stream `pieces` pieces, then the provider's mid-stream error event."""
    message: str
    pieces: int = 1


@dataclass
class SlowStream:
    """Stream the answer one piece every `interval` seconds."""
    interval: float


@dataclass
class Redirect:
    """Answer `code` (a 3xx) with this Location and no body, as a hostile or misconfigured service might."""
    location: str
    code: int = 307


@dataclass
class Raw:
    """Answer 200 with this body as it is (for malformed answers)."""
    body: bytes
    content_type: str = "application/json"


@dataclass
class Seen:
    path: str
    headers: dict
    body: dict


def _words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30            # idle keep-alive connections end by themselves
    disable_nagle_algorithm = True      # small SSE writes must not wait for delayed ACKs
    server: "_Server"

    def setup(self):
        super().setup()
        self.server.count_connection()

    def log_message(self, *args):       # keep test output clean
        pass

    # -- plumbing ------------------------------------------------------------------------

    _gzip = False
    _compressor = None

    def _send_json(self, status: int, doc: dict, headers: dict | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        if self._gzip:
            data = gzip.compress(data)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        if self._gzip:
            self.send_header("Content-Encoding", "gzip")
            self._compressor = zlib.compressobj(wbits=31)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if self._compressor is not None:
            if data:
                data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
            else:
                rest, self._compressor = self._compressor.flush(), None
                self._chunk(rest)
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, data: str, event: str | None = None) -> None:
        head = f"event: {event}\n" if event else ""
        self._chunk(f"{head}data: {data}\n\n".encode())

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _wait(self, seconds: float) -> bool:
        """Sleep, watching the connection; False (and counted) if the client went away."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.01))
            if readable and self._client_gone():
                self.server.count_disconnect()
                self.close_connection = True
                return False

    # -- the API -------------------------------------------------------------------------

    def do_POST(self):
        self._gzip, self._compressor = False, None     # one handler serves a keep-alive connection's requests
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        path = urlsplit(self.path).path.rstrip("/")     # a proxy gets the absolute form
        anthropic = path.endswith("/messages")
        if path not in ("/v1/chat/completions", "/v1/messages"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        self.server.enter(Seen(self.path, dict(self.headers), body))
        try:
            self._answer(body, anthropic)
        except (BrokenPipeError, ConnectionResetError):
            self.server.count_disconnect()
            self.close_connection = True
        finally:
            self.server.leave()

    def _error(self, anthropic: bool, status: int, message: str, headers: dict | None = None) -> None:
        if anthropic:
            doc = {"type": "error", "error": {"type": "api_error", "message": message}}
        else:
            doc = {"error": {"message": message, "type": "api_error", "code": None}}
        self._send_json(status, doc, headers)

    def _answer(self, body, anthropic: bool) -> None:
        server = self.server
        if server.api_key is not None:
            given = self.headers.get("x-api-key") if anthropic else \
                (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if given != server.api_key:
                # Like real services, quote the key that was refused.
                self._error(anthropic, 401, f"Incorrect API key provided: {given}")
                return
        if anthropic and not self.headers.get("anthropic-version"):
            self._error(True, 400, "anthropic-version header is required")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            self._error(anthropic, 400, "messages: expected a non-empty list")
            return
        behaviour = server.next_behaviour()
        if isinstance(behaviour, Status):
            self._error(anthropic, behaviour.code, behaviour.message, behaviour.headers)
            return
        if isinstance(behaviour, Redirect):
            self.send_response(behaviour.code)
            self.send_header("Location", behaviour.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(behaviour, Raw):
            self.send_response(200)
            self.send_header("Content-Type", behaviour.content_type)
            self.send_header("Content-Length", str(len(behaviour.body)))
            self.end_headers()
            self.wfile.write(behaviour.body)
            return
        self._gzip = isinstance(behaviour, Reply) and behaviour.gzip
        delay = server.delay
        if isinstance(behaviour, Reply) and behaviour.delay is not None:
            delay = behaviour.delay
        if isinstance(behaviour, Slow):
            delay = behaviour.seconds
        if delay and not self._wait(delay):
            return
        prompt = str(body["messages"][-1].get("content", ""))
        text = behaviour.text if isinstance(behaviour, Reply) and behaviour.text is not None else f"reply to: {prompt}"
        model = body.get("model", "unknown")
        usage = (len(prompt.split()), len(text.split()))
        if isinstance(behaviour, Reply) and not behaviour.usage:
            usage = None
        if body.get("stream"):
            pieces = _words(text)
            self._start_stream()
            if anthropic:
                self._stream_anthropic(pieces, model, usage, behaviour)
            else:
                self._stream_openai(pieces, model, usage, behaviour, body)
            return
        if anthropic:
            doc = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}
            if usage:
                doc["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
        else:
            doc = {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"}]}
            if usage:
                doc["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                "total_tokens": usage[0] + usage[1]}
        self._send_json(200, doc)

    def _pace(self, behaviour, index: int, anthropic: bool) -> bool:
        """Between pieces: cut the stream or wait, as planned; False when the stream must end here."""
        if isinstance(behaviour, StreamError) and index >= behaviour.pieces:
            if anthropic:
                self._event(json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                                   "message": behaviour.message}}), "error")
            else:
                self._event(json.dumps({"error": {"message": behaviour.message, "type": "server_error"}}))
            self._chunk(b"")
            return False
        if isinstance(behaviour, CutStream) and index >= behaviour.pieces:
            if behaviour.close:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            else:
                self._chunk(b"")
            return False
        if isinstance(behaviour, SlowStream) and index > 0:
            return self._wait(behaviour.interval)
        return True

    def _stream_openai(self, pieces, model, usage, behaviour, body) -> None:
        for index, piece in enumerate(pieces):
            if not self._pace(behaviour, index, False):
                return
            self._event(json.dumps({"object": "chat.completion.chunk", "model": model,
                                    "choices": [{"index": 0, "delta": {"content": piece}}]}))
        if not self._pace(behaviour, len(pieces), False):
            return
        if usage and (body.get("stream_options") or {}).get("include_usage"):
            self._event(json.dumps({"object": "chat.completion.chunk", "model": model, "choices": [],
                                    "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}))
        self._event("[DONE]")
        self._chunk(b"")

    def _stream_anthropic(self, pieces, model, usage, behaviour) -> None:
        start = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "model": model,
                                                      "content": [], "usage": {"input_tokens": usage[0] if usage else 0,
                                                                               "output_tokens": 1}}}
        self._event(json.dumps(start), "message_start")
        self._event(json.dumps({"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}), "content_block_start")
        self._event(json.dumps({"type": "ping"}), "ping")
        for index, piece in enumerate(pieces):
            if not self._pace(behaviour, index, True):
                return
            self._event(json.dumps({"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": piece}}), "content_block_delta")
        if not self._pace(behaviour, len(pieces), True):
            return
        self._event(json.dumps({"type": "content_block_stop", "index": 0}), "content_block_stop")
        self._event(json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                "usage": {"output_tokens": usage[1] if usage else 0}}), "message_delta")
        self._event(json.dumps({"type": "message_stop"}), "message_stop")
        self._chunk(b"")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256        # the benchmark opens 64 connections at once

    def __init__(self, delay: float, api_key: str | None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.api_key = api_key
        self._lock = threading.Lock()
        self._plan: list = []
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0
        self.connections = 0

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def enter(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def count_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    def next_behaviour(self):
        with self._lock:
            return self._plan.pop(0) if self._plan else Reply()


class AIServer:
    """The server, started on a free port of 127.0.0.1 in a daemon thread."""

    def __init__(self, *, delay: float = 0.0, api_key: str | None = None):
        self._server = _Server(delay, api_key)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ai-test-server", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def plan(self, *behaviours) -> None:
        with self._server._lock:
            self._server._plan.extend(behaviours)

    @property
    def seen(self) -> list[Seen]:
        with self._server._lock:
            return list(self._server.seen)

    @property
    def max_in_flight(self) -> int:
        return self._server.max_in_flight

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (keep-alive reuse keeps this low)."""
        return self._server.connections

    @property
    def disconnects(self) -> int:
        return self._server.disconnects

    def wait_for_disconnects(self, count: int, within: float = 5.0) -> int:
        """Disconnects are seen by the handler thread a moment after the client closes."""
        end = time.monotonic() + within
        while self._server.disconnects < count and time.monotonic() < end:
            time.sleep(0.01)
        return self._server.disconnects

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "AIServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    server = AIServer(delay=args.delay)
    print(server.base_url, flush=True)
    sys.stdin.read()            # until the parent closes our stdin (or dies)
    server.close()


if __name__ == "__main__":
    main()
