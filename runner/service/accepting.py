"""Accepting a run, whichever route it came by: bounded body, validation, preflight, room,
idempotency, then the durable record (Registry.accept) before the 202.

    413  the document is over RUNNER_MAX_ALT_BYTES
    422  the document is invalid (the validator's own pointers and messages), or a
         preflight check refuses it (system commands disabled, AI configuration...)
    429  RUNNER_MAX_QUEUED_RUNS runs wait already (Retry-After)
    409  the Idempotency-Key names a run accepted with another request
    503  the service is stopping
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from runner.service.answers import Refusal

# A document this large is parsed on a worker thread, not on the event loop.
PARSE_INLINE_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = "5"
MAX_KEY_LENGTH = 255
PREFLIGHT_CACHE_SIZE = 1024
ALT_SUFFIXES = ("", ".json", ".yaml", ".yml", ".alt", ".alt.json", ".alt.yaml", ".alt.yml")


def max_alt_bytes() -> int:
    from runner import AltLimits
    return AltLimits().max_bytes


async def read_body(request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refusal(413, f"document is {declared} bytes, more than the limit of {limit} (RUNNER_MAX_ALT_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"document is over {limit} bytes, more than the limit of {limit} (RUNNER_MAX_ALT_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(document: bytes):
    from runner import AltValidationError, ConfigurationError, parse_alt_file

    try:
        return parse_alt_file(document)
    except AltValidationError as error:
        issues = [{"path": issue.path or "/", "message": issue.message} for issue in error.issues]
        more = error.total - len(issues)
        if more > 0:
            issues.append({"path": "/", "message": f"... and {more} more"})
        raise Refusal(422, f"invalid ALT file ({error.total} error{'s' if error.total != 1 else ''})", issues) from None
    except ConfigurationError as error:
        raise Refusal(422, f"configuration: {error}") from None


async def parse_document(document: bytes):
    """The validated AltFile (JSON or YAML, either dialect); Refusal 422 listing every error."""
    if len(document) > PARSE_INLINE_BYTES:
        return await run_in_threadpool(_parse, document)
    return _parse(document)


def _preflight(registry, alt) -> None:
    """The checks `run` makes before the first task, but the output directory's (/ready
    watches that one: checking it makes and removes a file). A server's environment does
    not change, so each set of task types (and command names) is checked once."""
    from runner import ConfigurationError
    from runner.execution import preflight

    kinds = frozenset((task.task_type, _program(task)) for task in alt.tasks)
    found = registry.preflight_cache.get(kinds)
    if found is None:
        checked = preflight.Preflight(alt, registry.folder, registry.environ)
        found = [problem for check in preflight.CHECKS if check is not preflight.output_directory
                 for problem in check(checked)]
        if registry.placement is not None:
            # serve --dask: a user type whose handler cannot go to the workers is refused here.
            try:
                registry.placement.for_run({task.task_type for task in alt.tasks})
            except ConfigurationError as error:
                found.append(str(error))
        if len(registry.preflight_cache) >= PREFLIGHT_CACHE_SIZE:
            registry.preflight_cache.clear()
        registry.preflight_cache[kinds] = found
    if found:
        raise Refusal(422, "the run cannot start: " + "; ".join(found),
                      [{"path": "/", "message": problem} for problem in found])


def _program(task) -> str | None:
    command = task.parameters.get("command") if task.task_type == "system_command" else None
    return command[0] if isinstance(command, list) and command and isinstance(command[0], str) else None


def digest_of(*parts) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part if isinstance(part, bytes) else repr(part).encode())
        hashed.update(b"\0")
    return hashed.hexdigest()


def idempotency_key(request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise Refusal(400, f"Idempotency-Key: expected 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def trace_parent(request) -> str | None:
    """The request's W3C traceparent header when it is one: the run joins that trace. A value
    that is not one is ignored, as the W3C text says a receiver should."""
    from runner.trace.ids import parse_traceparent

    value = request.headers.get("traceparent")
    return value.strip() if parse_traceparent(value) is not None else None


def check_open(registry) -> None:
    if registry.draining:
        raise Refusal(503, "the service is stopping; accepted runs resume at its next start",
                      headers={"Retry-After": RETRY_AFTER_SECONDS})


async def _keyed(registry, key: str | None, digest: str):
    """The run an Idempotency-Key already names, once it is on disk (None: none, or the
    request that held the key could not record its run); Refusal 409 when it was accepted
    with another request."""
    if key is None:
        return None
    while True:
        existing = registry.keys.get(key)
        if existing is None:
            return None
        if existing.digest != digest:
            raise Refusal(409, f"Idempotency-Key {key!r} was used for another request (run {existing.id})")
        if await existing.recorded():
            return existing


async def accept(registry, document: bytes, *, key: str | None, digest: str, origin: str, mode=None, seed=None,
                 priority=None, metadata=None, alt_file=None, edit=None, traceparent=None):
    """(run, created): the run accepted for this request, or the one its Idempotency-Key
    already names (created False). edit(alt) -> bytes | None may rewrite the document
    (persona of /api/v1/process)."""
    check_open(registry)
    existing = await _keyed(registry, key, digest)
    if existing is not None:
        return existing, False
    alt = await parse_document(document)
    if edit is not None:
        edited = edit(alt)
        if edited is not None:
            document = edited
            alt = await parse_document(document)
    _preflight(registry, alt)
    if not registry.has_room():
        raise Refusal(429, f"{registry.config.max_queued_runs} runs wait already (RUNNER_MAX_QUEUED_RUNS)",
                      headers={"Retry-After": RETRY_AFTER_SECONDS})
    # Again: a request with the same key may have been accepted while this one was parsed
    # (a worker thread) or edited. From this check to registry.accept's keying nothing awaits
    # unless another request holds the key, and then this one answers with that run.
    existing = await _keyed(registry, key, digest)
    if existing is not None:
        return existing, False
    try:
        run = await registry.accept(alt, document, mode=mode, seed=seed, priority=priority, key=key, digest=digest,
                                    origin=origin, metadata=metadata, alt_file=alt_file, traceparent=traceparent)
    except OSError as error:
        raise Refusal(507, f"the run could not be recorded: {error.strerror or error}") from None
    return run, True


def alt_dir_file(alt_dir: Path | None, name: str, suffixes=("",)) -> Path:
    """The regular file `name` names inside the ALT files directory (symlinks resolved, each
    of `suffixes` tried); Refusal 403 for anything outside it, 404 "File not found"."""
    if alt_dir is None:
        raise Refusal(404, "File not found: the service has no ALT files directory (--alt-dir, RUNNER_ALT_FILES_DIR)")
    if not name or "\0" in name:
        raise Refusal(404, "File not found")
    for suffix in suffixes:
        candidate = Path(alt_dir, name + suffix)
        try:
            resolved = candidate.resolve(strict=False)
        except (OSError, RuntimeError):
            raise Refusal(404, "File not found") from None
        if resolved != alt_dir and alt_dir not in resolved.parents:
            raise Refusal(403, "the file is outside the ALT files directory")
        try:
            if stat.S_ISREG(os.stat(resolved).st_mode):
                return resolved
        except OSError:
            continue
    raise Refusal(404, "File not found")


async def read_alt_dir_file(alt_dir: Path, path: Path) -> bytes:
    """The bytes of `path` (from alt_dir_file), checked again on the opened file: a directory
    swapped for a symlink since alt_dir_file resolved it is 403 too."""
    from runner.alt_input import AltInputError, read_alt_input

    try:
        return await run_in_threadpool(read_alt_input, str(path), None, str(alt_dir))
    except AltInputError as error:
        if error.outside:
            raise Refusal(403, str(error)) from None
        raise Refusal(413 if error.too_large else 404, f"File not found: {error}" if not error.too_large else str(error))
