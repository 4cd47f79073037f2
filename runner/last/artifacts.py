"""Artifacts: the files a run produced, taken from task results into <last dir>/artifacts/.

Three sources, in this order per task:
- explicit entries in the output: `{"artifacts": [...]}` or `{"files": [...]}` (or
  `{"files": {name: text}}`), each a name plus `text`/`content`, `base64`, or a `path`
  inside the run's workspace;
- fenced code blocks (```lang ... ```) in AI text (the output string, or its
  `text`/`content`/`response` field); the language gives the extension;
- files a file_operation task wrote, listed (workspace-relative) in `metadata.files_written`.

Task outputs are untrusted: names are reduced to one safe path component, and a
workspace path that is absolute, climbs with `..`, or goes through a symlink is refused
with a recorded error; files are opened through runner.workspace, so a directory swapped
for a symlink mid-copy is never followed and a FIFO or device is refused, never waited on.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from runner.errors import RefusedError
from runner.last.atomic_files import atomic_file
from runner.librunner import artifact_text, may_name_artifacts
from runner.workspace import WorkspaceRefused, open_for_reading

ARTIFACTS_DIR = "artifacts"
MAX_NAME = 120
MAX_CODE_BLOCKS = 1000        # per task
LANGUAGE_EXTENSIONS = {
    "python": "py", "py": "py", "python3": "py", "javascript": "js", "js": "js", "node": "js",
    "typescript": "ts", "ts": "ts", "tsx": "tsx", "jsx": "jsx", "json": "json", "yaml": "yaml",
    "yml": "yaml", "toml": "toml", "bash": "sh", "sh": "sh", "shell": "sh", "zsh": "sh",
    "console": "txt", "c": "c", "h": "h", "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cs": "cs",
    "csharp": "cs", "rust": "rs", "rs": "rs", "go": "go", "golang": "go", "java": "java",
    "kotlin": "kt", "swift": "swift", "ruby": "rb", "rb": "rb", "php": "php", "perl": "pl",
    "sql": "sql", "html": "html", "xml": "xml", "css": "css", "markdown": "md", "md": "md",
    "text": "txt", "txt": "txt", "plaintext": "txt", "": "txt", "dockerfile": "dockerfile",
    "makefile": "mk", "r": "r", "lua": "lua", "scala": "scala", "haskell": "hs", "cython": "pyx",
    "svg": "svg", "csv": "csv", "ini": "ini", "diff": "diff", "patch": "patch", "log": "log",
}
CODE_EXTENSIONS = frozenset((
    "py", "pyx", "js", "ts", "tsx", "jsx", "sh", "c", "h", "cpp", "hpp", "cs", "rs", "go", "java",
    "kt", "swift", "rb", "php", "pl", "sql", "html", "css", "r", "lua", "scala", "hs", "mk",
    "dockerfile", "diff", "patch",
))
SAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


# The form of every path store_candidate records: artifacts/<task>/<name>, both made by
# safe_component (no separator, no leading dot). Anything else in a LAST file was edited.
STORED_PATH = re.compile(ARTIFACTS_DIR + r"/[A-Za-z0-9_-][A-Za-z0-9._-]*/[A-Za-z0-9_-][A-Za-z0-9._-]*")


def is_stored_path(path) -> bool:
    """Whether `path` has the form of an artifact this module stored (safe to link to)."""
    return isinstance(path, str) and STORED_PATH.fullmatch(path) is not None


class ArtifactRefused(RefusedError):
    """An artifact entry that cannot be stored; the message is recorded in the LAST file."""


@dataclass
class Candidate:
    """One artifact to store: where its bytes come from, and the name it gets."""

    task_id: str
    name: str            # as the task gave it (for the record)
    source: str          # explicit | code_block | files_written
    data: bytes | None = None
    workspace_path: str | None = None
    artifact_type: str | None = None
    safe_name: str = ""
    language: str | None = None     # a code block's fence language (kept in the artifact's metadata)


def safe_component(name: str, fallback: str = "artifact") -> str:
    """One path component with no separators, no leading dot, no traversal, bounded length."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = SAFE_CHARACTERS.sub("_", name).lstrip(".")
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: MAX_NAME - len(extension) - 1] + "." + extension) if dot and len(extension) <= 10 \
            else name[:MAX_NAME]
    return name or fallback


def unique_name(name: str, taken: set[str]) -> str:
    """name, or name-2.ext, name-3.ext ... whichever is free (compared case-insensitively)."""
    if name.lower() not in taken:
        taken.add(name.lower())
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    number = 2
    while True:
        candidate = f"{stem}-{number}" + (f".{extension}" if extension else "")
        if candidate.lower() not in taken:
            taken.add(candidate.lower())
            return candidate
        number += 1


def artifact_type_of(name: str, mime_type: str) -> str:
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if mime_type.startswith("image/"):
        return "image"
    if extension == "json" or mime_type == "application/json":
        return "json"
    if extension == "log":
        return "log"
    if extension in CODE_EXTENSIONS or extension in ("txt", "md", "csv", "rst") or mime_type.startswith("text/"):
        return "text"
    if extension:
        return "file"
    return "other"


def mime_type_of(name: str, data_is_text: bool | None) -> str:
    import mimetypes        # here: its first use reads the system's type tables, and most runs have no artifact

    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed:
        return guessed
    return "text/plain" if data_is_text else "application/octet-stream"


def _explicit(task_id: str, output, errors: list) -> list[Candidate]:
    found = []
    if not isinstance(output, dict):
        return found
    for key in ("artifacts", "files"):
        entries = output.get(key)
        if entries is None:
            continue
        if isinstance(entries, dict):
            entries = [{"name": name, "text": text} for name, text in entries.items()]
        if not isinstance(entries, list):
            errors.append({"task_id": task_id, "name": None,
                           "error": f"output.{key} must be a list of artifact entries"})
            continue
        for position, entry in enumerate(entries):
            where = f"output.{key}[{position}]"
            try:
                found.append(_entry(task_id, entry, where))
            except ArtifactRefused as refused:
                name = entry.get("name") if isinstance(entry, dict) else None
                errors.append({"task_id": task_id, "name": name if isinstance(name, str) else None,
                               "error": f"{where}: {refused}"})
    return found


def _entry(task_id: str, entry, where: str) -> Candidate:
    if not isinstance(entry, dict):
        raise ArtifactRefused("expected an object with a name and text, base64 or path")
    name = entry.get("name")
    path = entry.get("path")
    if name is not None and not isinstance(name, str):
        raise ArtifactRefused("'name' must be a string")
    kind = entry.get("artifact_type") or entry.get("type")
    kind = kind if isinstance(kind, str) else None
    text = entry.get("text", entry.get("content"))
    if text is not None:
        if not isinstance(text, str):
            text = _json_text(text)
        return Candidate(task_id, name or "artifact.txt", "explicit", data=text.encode("utf-8"), artifact_type=kind)
    if entry.get("base64") is not None:
        try:
            data = base64.b64decode(entry["base64"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ArtifactRefused("'base64' is not valid base64") from None
        return Candidate(task_id, name or "artifact.bin", "explicit", data=data, artifact_type=kind)
    if path is not None:
        if not isinstance(path, str):
            raise ArtifactRefused("'path' must be a string")
        return Candidate(task_id, name or path, "explicit", workspace_path=path, artifact_type=kind)
    raise ArtifactRefused("needs one of 'text', 'content', 'base64' or 'path'")


def _json_text(value) -> str:
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return str(value)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each closed ``` block, in one pass over the lines.

    A line scan rather than a regular expression: with many unclosed fences a
    non-greedy pattern rescans to the end of the text from each one (quadratic).
    """
    blocks = []
    language = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if language is None:
            if stripped.startswith("```"):
                info = stripped[3:].strip().split(maxsplit=1)
                language = info[0].lower() if info else ""
                lines = []
        elif stripped == "```":
            blocks.append((language, "".join(lines)))
            language = None
            if len(blocks) >= MAX_CODE_BLOCKS:
                break
        else:
            lines.append(line)
    return blocks


def _code_blocks(task_id: str, output) -> list[Candidate]:
    text = artifact_text(output)
    if not text or "```" not in text:
        return []
    found = []
    for number, (language, code) in enumerate(fenced_blocks(text), 1):
        if not re.fullmatch(r"[a-z0-9_+#.-]*", language):
            language = ""
        extension = LANGUAGE_EXTENSIONS.get(language)
        if extension is None:
            extension = language if re.fullmatch(r"[a-z0-9]{1,10}", language) else "txt"
        found.append(Candidate(task_id, f"code_{number}.{extension}", "code_block",
                               data=code.encode("utf-8"), artifact_type="json" if extension == "json" else "text",
                               language=language or None))
    return found


def _files_written(task_id: str, metadata, errors: list) -> list[Candidate]:
    paths = metadata.get("files_written") if isinstance(metadata, dict) else None
    if paths is None:
        return []
    if not isinstance(paths, list):
        errors.append({"task_id": task_id, "name": None, "error": "metadata.files_written must be a list of paths"})
        return []
    found = []
    for position, path in enumerate(paths):
        if not isinstance(path, str):
            errors.append({"task_id": task_id, "name": None,
                           "error": f"metadata.files_written[{position}]: expected a path string"})
            continue
        found.append(Candidate(task_id, path, "files_written", workspace_path=path))
    return found


def collect_candidates(task_results: dict) -> tuple[list[Candidate], list[dict]]:
    """Every artifact the task results name, with safe unique names; and the entries refused."""
    candidates: list[Candidate] = []
    errors: list[dict] = []
    directories: set[str] = set()
    # Most results hold no artifact: the core rules them out (may_name_artifacts), for a
    # record's typed results without making their dicts (artifact_sources).
    sources = getattr(task_results, "artifact_sources", None)
    if sources is not None:
        found_in = sources()
    else:
        found_in = ((task_id, result.get("output"), result.get("metadata")) for task_id, result in task_results.items())
        found_in = (source for source in found_in if may_name_artifacts(source[1], source[2]))
    for task_id, output, metadata in found_in:
        found = _explicit(task_id, output, errors) + _code_blocks(task_id, output) \
            + _files_written(task_id, metadata, errors)
        if not found:
            continue
        directory = unique_name(safe_component(task_id, "task"), directories)
        taken: set[str] = set()
        for candidate in found:
            candidate.safe_name = f"{directory}/{unique_name(safe_component(candidate.name), taken)}"
        candidates.extend(found)
    return candidates, errors


def open_in_workspace(workspace: Path | None, relative: str) -> int:
    """A read-only fd of the regular file `relative` names in the workspace; ArtifactRefused if it
    is not one or could leave the workspace (see runner.workspace: no symlink is ever followed)."""
    if workspace is None:
        raise ArtifactRefused(f"path '{relative}' given but the run has no workspace")
    try:
        # '/' is the only separator: a backslash is part of a name (file_operation wrote
        # '..\\escape5.txt' as one file), so it is not turned into a '..' component here.
        return open_for_reading(workspace, relative)
    except WorkspaceRefused as refused:
        raise ArtifactRefused(str(refused)) from None
    except OSError as error:
        raise ArtifactRefused(f"cannot open: {error.strerror or error}") from None


def _copy_from_workspace(fd: int, target: Path, limit: int) -> tuple[int, str, bool]:
    """Copies the open regular file fd (closing it), hashing it; returns size, sha256, is-text."""
    size = os.fstat(fd).st_size
    if size > limit:
        os.close(fd)
        raise ArtifactRefused(f"{size} bytes, over the {limit}-byte artifact limit")
    with os.fdopen(fd, "rb") as handle:
        digest = hashlib.sha256()
        size = 0
        head = b""
        with atomic_file(target) as out:
            while chunk := handle.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise ArtifactRefused(f"grew over the {limit}-byte artifact limit while read")
                if not head:
                    head = chunk[:4096]
                digest.update(chunk)
                out.write(chunk)
        return size, digest.hexdigest(), _looks_textual(head)


def _looks_textual(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start > len(head) - 4  # a character cut by the 4 KiB window
    return True


def store_candidate(candidate: Candidate, directory: Path, workspace: Path | None, limit: int) -> dict:
    """Writes one artifact under directory/artifacts/ and returns its record entry."""
    relative = f"{ARTIFACTS_DIR}/{candidate.safe_name}"
    target = directory / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if candidate.workspace_path is not None:
        source = open_in_workspace(workspace, candidate.workspace_path)
        size, sha256, textual = _copy_from_workspace(source, target, limit)
    else:
        data = candidate.data
        if len(data) > limit:
            raise ArtifactRefused(f"{len(data)} bytes, over the {limit}-byte artifact limit")
        with atomic_file(target) as out:
            out.write(data)
        size, sha256, textual = len(data), hashlib.sha256(data).hexdigest(), _looks_textual(data[:4096])
    name = target.name
    mime_type = mime_type_of(name, textual)
    kind = CODE_MEANS_TEXT.get(candidate.artifact_type, candidate.artifact_type)
    return {
        "id": "art_" + hashlib.sha256(f"{candidate.task_id}\x00{relative}".encode()).hexdigest()[:16],
        "name": candidate.name,
        "artifact_type": kind if kind in ARTIFACT_TYPES else artifact_type_of(name, mime_type),
        "task_id": candidate.task_id,
        "path": relative,
        "size_bytes": size,
        "mime_type": mime_type,
        "sha256": sha256,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": candidate.source,
        "metadata": {"language": candidate.language} if candidate.language else None,
    }


# The original runner's ArtifactType variants. Source code is text there (it maps .js,
# .html and .css files to text); a code block's language goes in the artifact's metadata.
ARTIFACT_TYPES = frozenset(("file", "image", "text", "json", "log", "other"))
CODE_MEANS_TEXT = {"code": "text"}


def extract_artifacts(task_results: dict, directory: Path, workspace=None, *, pool=None,
                      limit: int = 100 * 1024 * 1024) -> tuple[list[dict], list[dict]]:
    """Stores every artifact of the task results (in parallel on `pool` when given).

    Returns (artifacts, errors): errors name the task, the artifact and why it was refused.
    """
    candidates, errors = collect_candidates(task_results)
    if not candidates:
        return [], errors
    workspace = Path(workspace) if workspace is not None else None

    def store(candidate: Candidate):
        try:
            return store_candidate(candidate, directory, workspace, limit), None
        except ArtifactRefused as refused:
            return None, {"task_id": candidate.task_id, "name": candidate.name, "error": str(refused)}
        except OSError as error:
            return None, {"task_id": candidate.task_id, "name": candidate.name,
                          "error": f"cannot write: {error.strerror or error}"}

    outcomes = pool.map(store, candidates) if pool is not None and len(candidates) > 1 else map(store, candidates)
    artifacts = []
    for artifact, error in outcomes:
        if artifact is not None:
            artifacts.append(artifact)
        else:
            errors.append(error)
    return artifacts, errors
