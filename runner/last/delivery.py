"""Delivery of LAST files to the ALT_LAS archive: a LastFileMessage published on NATS.

The archive service (archive-service/internal/listener/nats_listener.go) subscribes to
`last.files` and decodes each message into

    LastFileMessage{ID string "id"; FilePath string "file_path"; SuccessRate float64
                    "success_rate"; Timestamp time.Time "timestamp" (RFC 3339);
                    Metadata map[string]interface{} "metadata,omitempty"}

With RUNNER_NATS_URL set, every LAST directory written (write_last_file: run, the C ABI,
batches, the Python API) is published once it is complete on disk. Publication can only
add to a LAST file, never lose or hold it: it starts after last.json is in place, makes
at most ATTEMPTS attempts each bounded by RUNNER_NATS_TIMEOUT, and its outcome is logged
and written beside last.json as delivery.json. A failure is an error of the call only
with RUNNER_NATS_REQUIRED=true.

nats-py is asyncio; it runs on one private event loop thread, started on first use, with
one connection per server URL kept between publications (a batch of a thousand LAST
files opens one connection, not a thousand). nats and asyncio are imported only then: runs
that do not publish never load them.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson

from runner import extras, settings
from runner.errors import ConfigurationError
from runner.settings import shown
from runner.last.atomic_files import write_atomically

log = logging.getLogger("runner")

DEFAULT_SUBJECT = "last.files"          # the archive service's default (config.go)
DEFAULT_TIMEOUT_SECONDS = 2.0           # one attempt: connect, publish, flush
ATTEMPTS = 3
RETRY_DELAYS = (0.1, 0.3)               # before the 2nd and the 3rd attempt
URL_SCHEMES = ("nats", "tls", "ws", "wss")
RECORD_NAME = "delivery.json"


@dataclass(frozen=True)
class DeliverySettings:
    url: str
    subject: str
    required: bool
    timeout: float


def settings_from_environment(environ=os.environ) -> DeliverySettings | None:
    """The delivery settings, None when RUNNER_NATS_URL is unset; ConfigurationError names a bad variable."""
    url = settings.text("RUNNER_NATS_URL", environ)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port      # a port that is not a number from 0 to 65535: ValueError
    except ValueError as error:     # "Invalid IPv6 URL"; the value may carry a password: not shown
        raise ConfigurationError(f"RUNNER_NATS_URL: not a URL ({error}); expected a NATS server URL such as "
                         "nats://127.0.0.1:4222") from None
    if parts.scheme not in URL_SCHEMES or not parts.hostname:
        raise ConfigurationError(f"RUNNER_NATS_URL={shown(redacted(url))}: expected a NATS server URL such as "
                         "nats://127.0.0.1:4222")
    missing = extras.problem("nats", "RUNNER_NATS_URL")
    if missing is not None:
        raise ConfigurationError(missing)       # a configuration mistake: refused before any task
    subject = settings.text("RUNNER_NATS_SUBJECT", environ) or DEFAULT_SUBJECT
    if any(c in subject for c in " \t\r\n*>") or subject.startswith(".") or subject.endswith(".") or ".." in subject:
        raise ConfigurationError(f"RUNNER_NATS_SUBJECT={subject!r}: expected a NATS subject without wildcards, "
                         "such as last.files")
    return DeliverySettings(url=url, subject=subject,
                            required=settings.flag("RUNNER_NATS_REQUIRED", False, environ),
                            timeout=settings.number("RUNNER_NATS_TIMEOUT", DEFAULT_TIMEOUT_SECONDS, environ,
                                                    maximum=600, above_minimum=True))


def redacted(url: str) -> str:
    """The URL without user, password or token: it goes into logs and delivery.json.
    Never raises: it words the errors about malformed URLs too (the port is kept as text)."""
    try:
        parts = urlsplit(url)
    except ValueError:      # e.g. an unclosed IPv6 bracket: nothing in it can be trusted apart
        return "***" if "@" in url else url
    if "@" not in parts.netloc:
        return url
    host_port = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"***@{host_port}", parts.path, parts.query, parts.fragment))


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def last_file_message(record: dict, directory: Path) -> dict:
    """The archive's LastFileMessage for a LAST record written in `directory`."""
    statistics = record.get("statistics") if isinstance(record.get("statistics"), dict) else {}
    metadata = {key: record.get(key) for key in ("alt_file_id", "execution_id", "status", "title", "mode")
                if record.get(key) is not None}
    if statistics.get("total_tasks") is not None:
        metadata["total_tasks"] = statistics["total_tasks"]
    metadata["generator"] = "librunner"
    stamp = record.get("created_at")
    return {
        "id": str(record["id"]),
        "file_path": str((Path(directory) / "last.json").resolve()),
        "success_rate": float(record.get("success_rate") or 0.0),
        "timestamp": stamp if isinstance(stamp, str) and stamp else rfc3339_now(),
        "metadata": metadata,
    }


class _Publisher:
    """One private asyncio loop thread and its NATS connections, shared by every caller."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop = None
        self._connections: dict = {}

    def _running_loop(self):
        import asyncio

        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="runner-nats", daemon=True).start()
                self._loop = loop
            return self._loop

    async def _connection(self, url: str, timeout: float):
        try:
            import nats
        except ImportError:
            raise RuntimeError("nats-py is not installed: pip install 'librunner[nats]'") from None

        connection = self._connections.get(url)
        if connection is not None and connection.is_connected:
            return connection
        self._connections.pop(url, None)
        if connection is not None:
            await _close_quietly(connection)

        seen = []

        async def report(error):     # nats-py's error callback: kept for the message, not printed
            seen.append(error)
            log.debug("nats: %s", describe(error))

        # max_reconnect_attempts=0 would mean "no limit" to nats-py's first connection: 1
        # gives it two quick tries, and the retries of deliver() are the policy.
        import asyncio

        ended = asyncio.Event()

        async def closed():         # nats-py leaves a flush waiting when the connection ends
            ended.set()

        try:
            connection = await nats.connect(url, connect_timeout=timeout, allow_reconnect=False,
                                            max_reconnect_attempts=1, reconnect_time_wait=0.05,
                                            error_cb=report, closed_cb=closed, disconnected_cb=closed,
                                            name="librunner")
        except nats.errors.NoServersError:
            raise ConnectionError(f"cannot connect: {describe(seen[-1])}" if seen else "cannot connect") from None
        connection.librunner_ended = ended
        self._connections[url] = connection
        return connection

    @staticmethod
    async def _confirmed(connection, timeout: float) -> None:
        """flush(), or the connection's end, whichever comes first (flush() alone would wait
        its whole timeout for the PONG of a connection that has ended)."""
        import asyncio

        flushed = asyncio.ensure_future(connection.flush(timeout=timeout))
        ended = asyncio.ensure_future(connection.librunner_ended.wait())
        done, waiting = await asyncio.wait({flushed, ended}, return_when=asyncio.FIRST_COMPLETED)
        for task in waiting:
            task.cancel()
        if flushed in done:
            flushed.result()

    async def _publish(self, url: str, subject: str, payload: bytes, timeout: float) -> None:
        try:
            connection = await self._connection(url, timeout)
            # Published means confirmed: the server's PONG to a PING sent after the message
            # (it reads in order, so it has read the message). nats-py's flush() returns without
            # one when its read loop has ended (a server that dropped the connection on the
            # message), so the PONGs it counted tell whether one came. A flush first has every
            # earlier PING (nats-py sends one of its own after connecting) answered, so the count
            # moves after the message only for the PING that follows it. _pongs_received and
            # _flush_pending (below) are nats-py internals, pinned by tests/test_last_delivery.py.
            await connection.flush(timeout=timeout)
            pongs = getattr(connection, "_pongs_received", None)
            await connection.publish(subject, payload)
            # nats-py (2.16) writes flush()'s PING straight to the socket while the message
            # still waits in its pending buffer for the flusher task: the PING could overtake
            # the message, and its PONG "confirm" a message the server never read (1 in 40
            # against a server that drops the connection on it). Written first, then pinged.
            await connection._flush_pending(force_flush=True)
            await self._confirmed(connection, timeout)
            if not connection.is_connected or (pongs is not None and connection._pongs_received <= pongs):
                raise ConnectionError("the server did not confirm the message (the connection ended before "
                                      "its reply to the ping after it)")
        except BaseException:
            dropped = self._connections.pop(url, None)
            if dropped is not None:
                await _close_quietly(dropped)
            raise

    def publish(self, url: str, subject: str, payload: bytes, timeout: float) -> None:
        """Publishes and flushes within about `timeout` seconds; raises what went wrong."""
        import asyncio

        loop = self._running_loop()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(self._publish(url, subject, payload, timeout), timeout), loop)
        try:
            future.result(timeout + 1.0)
        except BaseException:
            future.cancel()
            raise


async def _close_quietly(connection) -> None:
    try:
        await connection.close()
    except Exception:
        pass


_PUBLISHER = _Publisher()


def describe(error: BaseException) -> str:
    text = str(error).strip()
    name = type(error).__name__
    return f"{name}: {text}" if text and text != name else name


def deliver(record: dict, directory: Path, chosen: DeliverySettings) -> dict:
    """Publishes the LastFileMessage of a written LAST directory and records the outcome
    in its delivery.json; returns that record. Never raises for a failed publication."""
    message = last_file_message(record, directory)
    payload = orjson.dumps(message)
    attempts = []
    published = False
    for number in range(1, ATTEMPTS + 1):
        if number > 1:
            time.sleep(RETRY_DELAYS[min(number - 2, len(RETRY_DELAYS) - 1)])
        started = rfc3339_now()
        try:
            _PUBLISHER.publish(chosen.url, chosen.subject, payload, chosen.timeout)
        except Exception as error:     # every failure of the network or the client is recorded
            attempts.append({"attempt": number, "at": started, "error": describe(error)})
            continue
        attempts.append({"attempt": number, "at": started, "error": None})
        published = True
        break
    outcome = {"published": published, "url": redacted(chosen.url), "subject": chosen.subject,
               "required": chosen.required, "attempts": attempts, "message": message}
    extra = {"alt_id": record.get("alt_file_id"), "last_id": record.get("id")}
    if published:
        log.info("published %s on %s", message["id"], chosen.subject, extra=extra)
    else:
        log.warning("LAST file %s not published on %s at %s after %d attempts: %s", message["id"],
                    chosen.subject, outcome["url"], len(attempts), attempts[-1]["error"],
                    extra={**extra, "delivery_failure": True})
    try:
        write_atomically(Path(directory) / RECORD_NAME, orjson.dumps(outcome, option=orjson.OPT_INDENT_2))
    except OSError as error:
        log.warning("cannot write %s in %s: %s", RECORD_NAME, directory, error.strerror or error, extra=extra)
    return outcome


def failure_text(outcome: dict) -> str:
    """One line for a person: what was not published, where, why, and where it is recorded."""
    attempts = outcome["attempts"]
    return (f"LAST file {outcome['message']['id']} not published on {outcome['subject']} at {outcome['url']} "
            f"after {len(attempts)} attempts: {attempts[-1]['error'] if attempts else 'not attempted'}")
