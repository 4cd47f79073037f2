"""The report page's compiled code, kept between processes: Jinja2's bytecode cache in the
user's cache directory. Made only when a report is rendered, never by reading a LAST file."""
from __future__ import annotations

import hashlib
import os
import stat

from jinja2 import FileSystemBytecodeCache, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

# The options the page is compiled under: autoescaping is compiled into its code, so they
# are part of a cache entry's name.
PAGE_OPTIONS = dict(
    autoescape=True,
    undefined=StrictUndefined,     # the views (report_view) have every field; a typo must fail
    trim_blocks=True,
    lstrip_blocks=True,
)


def _cache_directory() -> str:
    """$XDG_CACHE_HOME/librunner (default ~/.cache/librunner), made 0700 if missing; OSError
    unless it is a directory of this user's that no one else can write."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        raise OSError(f"no absolute cache directory ({base!r})")
    directory = os.path.join(base, "librunner")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    status = os.lstat(directory)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise OSError(f"{directory} is not a directory only this user can write")
    return directory


class CompiledPageCache(FileSystemBytecodeCache):
    """The compiled page, kept between processes: compiling it is ~20 ms of every run that
    writes a report, loading it a fraction of a millisecond.

    Jinja2's own cache, in the user's cache directory (_cache_directory; not the temporary
    folder, which a run leaves as it found it). An entry is found by the template's path
    and source checksum (Jinja2) and by the environment it was compiled for (the pattern:
    autoescaping is compiled into the code, so a page compiled under other options is never
    reused). A cache that cannot be read or written is passed over: the page is compiled
    as before.
    """

    def __init__(self):
        settings = repr((SandboxedEnvironment.__qualname__, sorted((k, repr(v)) for k, v in PAGE_OPTIONS.items())))
        super().__init__(_cache_directory(),
                         f"__librunner_report_{hashlib.sha1(settings.encode()).hexdigest()[:16]}_%s.cache")

    def load_bytecode(self, bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:        # a truncated or foreign file: compile instead
            bucket.reset()

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except Exception:        # a full disk or a read-only temporary folder
            pass


def compiled_page_cache():
    try:
        return CompiledPageCache()
    except (OSError, RuntimeError):     # no safe per-user directory
        return None
