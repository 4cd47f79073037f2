"""The run's journal: <out>/<last_id>/journal.jsonl, appended to as the run goes.

One JSON object per line, each with "type":
    run_started     format (FORMAT: 2 since inline results have short rows; an earlier
                    librunner refuses those lines' fields, a later format is refused here),
                    last_id, alt_id, alt_file (path or null), alt_sha256, mode, seed,
                    settings (execution settings, no secrets), ai (provider, default model),
                    workspace, temporary_workspace, resumed_from, pid, started_at
    attempt_started task_id, attempt, started_at, fault (chaos) or null
    attempt_ended   task_id, attempt, outcome, error, duration_ms, ai (accounting) or null
    task_results    fields, rows: task results that ended in one commit window, in the order
                    they ended (a window's results in one line, or several when inline and
                    other results alternate), each a row of the line's "fields", one of two:
                    - the core's JOURNAL_ROW_FIELDS (a full row): task_id, status, output,
                      error, started_at, completed_at, duration_ms, metadata, execution_id,
                      extra (fields beyond these, or null): any result;
                    - INLINE_ROW_FIELDS (format 2 on): task_id, started_at, output,
                      completed_at, duration_ms, offset_ms[, control]: an inline (generic)
                      result, completed with one attempt (status, error, its metadata and the
                      attempt's stamp and duration follow). started_at null: the one of the
                      row before in the line; completed_at null: its started_at; offset_ms
                      null: none; a seventh item only when the task has a control (its
                      metadata's "control"). Written by the core from the typed fields;
                      an inline result whose values are not exact JSON has a full row.
                    Either reads back as exactly TaskResult.to_dict() (journal_row_dicts).
    segment_completed task_id, output: the own task of a loop's or call's segment that is a
                    command or file operation completed (its result follows when its construct ends)
    run_ended       interrupted, ended_at
    resumed_by      last_id, directory, started_at: a resume of this run (appended by the
                    resume, which holds the journal's lock; one line per resume)
The ALT document itself is beside it, alt.json, so an interrupted run can be resumed
from its directory alone. The file is held under an exclusive flock for the run's life:
a journal whose lock can be taken belongs to a dead (or finished) run.

The start (alt.json, the first lines) is made durable by the writer thread while the run
begins: work with no effect outside the record goes on meanwhile, anything else waits for it
(Journal.start, wait_started). Group commit: then the writer writes and fsyncs what was
queued every COMMIT_SECONDS (sooner while results stream in), so a task's result is on disk
within COMMIT_SECONDS plus one fsync of its end. A result with
an effect outside the record (a command, a file operation) and a command's process group
hurry() the writer: it commits at once, with whatever else is queued, so the window between
such an effect and its record is one commit (a write and an fsync) rather than a window
of COMMIT_SECONDS (benchmarks/journal_window.py measures it). The run's own thread never
waits for the disk.
"""
from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import logging
import _thread
import os
import stat
import tempfile
import sys
import threading
import time
from pathlib import Path

import orjson

from runner import librunner
from runner.errors import JournalError
from runner.execution import processes
from runner.last.atomic_files import process_umask

log = logging.getLogger("runner")

JOURNAL_NAME = "journal.jsonl"
ALT_NAME = "alt.json"
COMMIT_SECONDS = 0.05
COMMIT_RESULTS = 1024           # results queued that make a commit before COMMIT_SECONDS (the drain wakes the writer every JOURNAL_LOOK)
POLL_SECONDS = 0.004            # how often the writer looks at the queue while results stream in
START_WAIT_SECONDS = 0.005       # Journal.start's longest wait for its writer's first hand-over point
HASH_ASIDE_BYTES = 1 << 20      # alt.json from this size on is hashed while it is written
# Looked for once, here on the importing thread (the writer's os calls each wait for the GIL).
SHA256_WITHOUT_GIL = librunner.sha256_without_gil()
# run_started's "format": 2 since inline results have short rows (INLINE_ROW_FIELDS); this
# version reads 1 and 2 and refuses a journal of a later format rather than misread it.
FORMAT = 2


class Journal:
    """An open journal. write() never blocks on I/O; finish() commits what is left.

    Records are queued on a plain list (appending is atomic under the GIL, so the run's
    loop takes no lock); the writer thread takes what is there every COMMIT_SECONDS.
    Task results finished in one commit window share a line ("task_results"), written by
    the core in one buffer: an inline result's short row from its typed fields, no dict
    per result, by the run's drain as it ends (row_sink, a RowSink), other results' by the
    writer (journal_text); their doubles written by the writer without the GIL.
    """

    def __init__(self, directory: Path, alt_json: bytes | None = None, before=None):
        self.directory = Path(directory)
        self.path = self.directory / JOURNAL_NAME
        # Made under a temporary name and renamed to journal.jsonl by start(), once its first
        # lines are on disk: a journal, when there is one, always starts with them whole.
        self._mode = 0o666 & ~process_umask()
        self._fd, self._temporary = self._temporary_file(JOURNAL_NAME)
        try:
            # Blocking: is_locked() in another run's cleaning may hold a shared lock on this
            # file for an instant (a non-blocking attempt then failed the run).
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            os.close(self._fd)
            os.unlink(self._temporary)
            raise
        self._alt_json = alt_json
        self._before = before                   # cleaning: on a thread of its own once started
        self._records: list[dict] = []
        self._results: list = []
        self.write = self._records.append           # a record: a dict with "type"
        # The results' queue (self._results): inline results as their rows, which the
        # scheduler's run_inline writes there itself, and the others (TaskResults).
        self.row_sink = librunner.RowSink(self._results)
        self.write_result = self.row_sink.add_other     # a TaskResult
        self._stop = threading.Event()
        # Set by hurry(): the writer commits now instead of at the end of its window.
        self._hurry = threading.Event()
        self._commit_lock = threading.Lock()
        self.error: OSError | None = None       # the first write error (when_failed)
        self._stopping = False                  # that error stops the run (when_failed)
        self._on_failure = None                 # when_failed's callback
        self._start_required = False            # a start the disk refuses stops the run too (start)
        self.began = False                      # journal.jsonl exists: a resume can take the run up
        self.warnings: list[str] = []           # what could not be written, for the LAST file
        # The writer and the cleaning run on threads started without threading.Thread's
        # hand-shake (the caller waited ~2 ms a thread for the new one to take the GIL, more
        # under load); each sets its Event when it ends.
        self._thread: threading.Event | None = None     # set when the writer thread has ended
        self._start: tuple | None = None        # what start() was given, until the writer has written it
        self._busy = [True]                     # the writer's busy count while it starts (_give_back)
        self._started = threading.Event()       # set once the start is on disk (or could not be)
        self._start_taken = 0                   # the results queued meanwhile, committed with the start
        self._cleaning: threading.Event | None = None   # set when the cleaning has ended
        self._abandoned = False                 # start() interrupted: the writer releases at its end
        # What the writer's start needs from the OS is had here, on the run's thread before
        # its loop: each of Python's os calls on the writer's thread let go of the GIL and then
        # waited for it while the run's drain held it (up to INLINE_GIL_YIELD tasks each).
        self._alt_file: tuple[int, str] | None = None     # alt.json's temporary file, until written
        self._alt_error: OSError | None = None
        self._directory_fd = -1
        try:
            self._directory_fd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.release()
            raise
        if alt_json is not None:
            try:
                self._alt_file = self._temporary_file(ALT_NAME)
            except OSError as error:    # the writer says so (a warning): the journal is still worth writing
                self._alt_error = error

    def start(self, first: dict, results=(), documents=(), *, required: bool = False) -> None:
        """Begins the run's journal and returns at once: the writer thread makes the start
        durable (alt.json, then the journal's first lines: `first`, the run_started record,
        and `results`, the results an earlier run made that this one reuses, TaskResults, and
        `documents`, more of them as result dicts: control-flow instances not made yet;
        written, fsynced and renamed to journal.jsonl), then commits what the run queued
        meanwhile, then goes on committing. Until the start is on disk only work with no
        effect outside the record may go on (inline tasks, reused results: what a crash
        meanwhile loses is done again, never done twice); anything else waits for it first
        (wait_started). The cleaning of dead runs (`before`) runs on a thread of its own. A
        disk that refuses these writes is a warning (self.warnings), not the end of the run,
        unless `required` (when_failed)."""
        self._start_required = required     # before the writer's thread: its start may fail at once
        self._start = (first, list(results), documents)
        try:
            # Busy from before its thread starts: the run's drain of inline tasks, which would
            # hold the GIL until it ends, lets go of it for a moment every INLINE_GIL_YIELD
            # tasks, so that the writer's first hold of the GIL comes while the drain runs.
            let_go = librunner.gil_let_go_seen()
            self._thread = _start_thread(self._writer, busy=self._busy)
        except RuntimeError as error:       # no thread to be had ("can't start new thread")
            self.release()      # its lock and its temporary file: nothing was written
            with contextlib.suppress(OSError):
                self.directory.rmdir()      # the run's directory, empty: the run never began
            raise JournalError(f"{self.path}: the journal's writer cannot start ({error}): the run does not "
                               "begin", pointer=JOURNAL_NAME) from None
        except BaseException:
            self._abandon()
            raise
        try:
            # Its thread takes the GIL at once, given here until its first hand-over point (the
            # write of alt.json): ~0.1 ms of this thread, where the writer otherwise waited for
            # a pause of the drain that begins next (every INLINE_GIL_YIELD tasks), late with
            # all it does after. Bounded: a machine that starts no thread meanwhile does not hold it.
            librunner.gil_wait_let_go(let_go, START_WAIT_SECONDS)
            if self._before is not None:
                try:
                    self._cleaning = _start_thread(self._clean)
                except RuntimeError as error:   # best effort: the next run in this place cleans
                    log.warning("dead runs in %s are not cleaned by this run (%s)", self.directory.parent, error)
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """The run does not go on (a Ctrl-C, no memory, in start() once its writer's thread may
        have begun): the writer ends after its start, and releases the journal itself (its
        files are its own until then), rather than looping for the life of the process with
        the directory locked as a live run's. Its start on disk, the directory is an
        interrupted run's: resume and the cleaning of dead runs take it from there."""
        self._abandoned = True
        self._stop.set()
        self.hurry()

    def hurry(self) -> None:
        """The writer commits now, not at the end of its window (a result with an effect)."""
        self._hurry.set()
        librunner.gil_wake()        # a nap of the streaming writer ends too

    def wait_started(self) -> None:
        """Returns once the journal's start is on disk, or could not be written (a warning):
        called before the run's first attempt with an effect outside the record."""
        self._started.wait()

    def _writer(self) -> None:
        # The writer's waits for the GIL while the run's thread drains inline tasks go through
        # the core's hand-over (gil_handoff.pxi): write_synced and gil_nap for its own I/O and
        # naps; gil_busy around its other waits: its first hold of the GIL (raised by
        # _start_thread), had now, and hashlib's hashing (_sha256_hex, _Hashing). Given back
        # here, not after the whole start: every pause of the drain it made cost the run ~0.16 ms
        # (a nanosleep of 50 us), two or three in a run of 10k inline tasks. (A warning's own
        # writes, on a disk that refuses the start, wait for the GIL as any thread's do.)
        _give_back(self._busy)
        try:
            self._write_start(*self._start)
        except BaseException as error:      # not the disk (that is a warning): a bug, said as such
            log.debug("the journal's start failed", exc_info=True)
            self._failed(error if isinstance(error, OSError) else OSError(f"{type(error).__name__}: {error}"),
                         self.path)
        finally:
            _give_back(self._busy)
            self._start = None
            self._started.set()
        self._commit_loop()
        if self._abandoned:
            self.release()

    def _write_start(self, first: dict, results: list, documents) -> None:
        directory_fd = self._directory_fd
        if self._alt_json is not None:
            hashing = digest = None
            wanted = first.get("alt_sha256", 0) is None
            # Hashed by write_synced without the GIL, while the disk writes alt.json; where it
            # cannot (no libcrypto found), by hashlib as before.
            here = wanted and SHA256_WITHOUT_GIL
            if wanted and not here:
                if len(self._alt_json) < HASH_ASIDE_BYTES:
                    first["alt_sha256"] = _sha256_hex(self._alt_json)
                else:
                    # Hashed while alt.json is written and fsynced: both release the GIL (a
                    # 100 MB file: ~0.2 s each, at once instead of one after the other).
                    hashing = _Hashing(self._alt_json)
            try:
                digest = self._write_alt_json(directory_fd, digest=here)
            except OSError as error:
                # The journal is still worth writing: `show` explains the run from it.
                self._warn(f"{self.directory / ALT_NAME} cannot be written ({error.strerror or error}): "
                           "the run cannot be resumed")
            finally:
                if hashing is not None:
                    first["alt_sha256"] = hashing.hexdigest()
            if here:        # hashlib when the write, or the hash, could not be made
                first["alt_sha256"] = digest or _sha256_hex(self._alt_json)
            self._alt_json = None       # written: not kept for the whole run (a 1M-task file is 100 MB)
        lines = [orjson.dumps(first, option=orjson.OPT_APPEND_NEWLINE, default=str)]
        if results or documents:
            lines.append(self._results_line(results, documents))
        with self._commit_lock:
            # What the run queued meanwhile goes in the same write and fsync, after them.
            queued, self._start_taken = self._pending_lines()
        lines += queued
        try:
            librunner.write_synced(self._fd, lines, rename_from=os.fsencode(self._temporary),
                                   rename_to=os.fsencode(self.path), directory_fd=directory_fd)
            self._temporary = None
            self.began = True
        except OSError as error:
            if self.path.exists():      # renamed: only its directory's fsync failed
                self._temporary = None
                self.began = True
            self._failed(error, self.path)

    def _temporary_file(self, name: str) -> tuple[int, str]:
        """A new file beside `name` under a temporary name, 0o666 less the umask (mkstemp makes
        0600), as every other file of the LAST directory: (fd, path)."""
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            os.fchmod(fd, self._mode)
        except BaseException:
            os.close(fd)
            os.unlink(temporary)
            raise
        return fd, temporary

    def _write_alt_json(self, directory_fd: int, digest: bool = False) -> str | None:
        """alt.json written atomically (write_atomically's steps: a temporary file beside it,
        fsynced, renamed, the directory fsynced) in one call without the GIL; digest: its
        SHA-256 made there too (None when it could not be)."""
        if self._alt_error is not None:
            raise self._alt_error
        (fd, temporary), self._alt_file = self._alt_file, None     # write_synced closes fd, whatever happens
        try:
            return librunner.write_synced(fd, [self._alt_json], close=True, rename_from=os.fsencode(temporary),
                                          rename_to=os.fsencode(self.directory / ALT_NAME),
                                          directory_fd=directory_fd, digest=digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def when_failed(self, callback) -> None:
        """callback() once a write fails after journal.jsonl exists (at once if one did): the
        journal keeps nothing more, and a resume of it would run again what the run does next.
        A start the disk refuses leaves no journal.jsonl, nothing a resume could take up: the
        run may go on then (a warning), unless the start was `required`: a resume's (the run it
        resumes stays resumable, and a later resume of it would not know what this one did) or
        a run of the service's (its next start would run it again). Either way the callback
        comes before the run's first attempt with an effect is let go (wait_started)."""
        self._on_failure = callback
        if self._stopping:
            callback()

    def _failed(self, error: OSError, path: Path) -> None:
        """The first write error ends the journal's writes (what follows would not be a whole
        journal), and is said; when_failed's callback stops the run when it must."""
        if self.error is None:
            self.error = error
            if not self.began and not self._start_required:
                # No journal.jsonl: no resume can take the run up.
                self._warn(f"{path} cannot be written ({error.strerror or error}): the run goes on and its LAST "
                           "file is written at the end if the disk allows, but it cannot be resumed")
                return
            if not self.began:
                self._warn(f"{path} cannot be written ({error.strerror or error}): the run stops before anything "
                           "with an effect (without its journal, what it did would be done again)")
            else:
                self._warn(f"{path} cannot be written ({error.strerror or error}): the run stops (a resume from a "
                           "journal that lacks what it did next would do it again); its LAST file is written if "
                           "the disk allows, and a resume once the disk has room runs the rest")
            self._stopping = True
            callback = self._on_failure
            if callback is not None:
                callback()

    def _warn(self, message: str) -> None:
        """Said at once on the library's log (stderr for the CLI and, by default, any host) and
        kept for the LAST file."""
        self.warnings.append(message)
        log.warning("%s", message)

    def _clean(self) -> None:
        try:
            self._before()
        except Exception:
            log.debug("cleaning dead runs failed", exc_info=True)

    def sync(self) -> None:
        """Returns once everything written so far is on disk (or could not be written)."""
        if self._thread is not None:
            self._started.wait()        # the start first: nothing is written before it
        self._commit_pending()

    def _commit_loop(self) -> None:
        """Commits every COMMIT_SECONDS (at once on hurry()), and as soon as COMMIT_RESULTS
        results are queued: a drain of inline tasks wakes the writer's nap every JOURNAL_LOOK
        results it queues (the scheduler), and while results stream in (the last commit
        had COMMIT_RESULTS / 4 or more) the writer also looks every POLL_SECONDS. The disk
        writes, which release the GIL, then go on beside the run's loop, and the commit left
        to finish() is a small one."""
        hurry, stop, sink = self._hurry, self._stop, self.row_sink
        nap, seen = librunner.gil_nap, librunner.gil_nap_seen
        clock = time.monotonic
        # What was queued while the start was written comes at once.
        streaming = not stop.is_set() and self._start_taken + self._commit_pending() >= COMMIT_RESULTS // 4
        while True:
            deadline = clock() + COMMIT_SECONDS
            while True:
                since = seen()      # before the look: a wake after it ends the nap
                if sink.queued >= COMMIT_RESULTS or hurry.is_set() or stop.is_set():
                    break
                left = deadline - clock()
                if left <= 0:
                    break
                nap(min(left, POLL_SECONDS) if streaming else left, since)     # the GIL back through the hand-over
            if stop.is_set():
                return
            hurry.clear()       # a hurry() while this commit runs makes the next one at once
            streaming = self._commit_pending() >= COMMIT_RESULTS // 4

    @staticmethod
    def _take(pending: list) -> list:
        count = len(pending)
        batch = pending[:count]
        del pending[:count]     # appends made meanwhile stay: they are past `count`
        return batch

    @staticmethod
    def _results_line(results: list, documents=()):
        """The task_results lines of `results` and `documents`, as write_synced takes them (a
        TextWithDoubles: the doubles' text is made there, without the GIL)."""
        # The rows of results other than inline ones are tuples, and rows of documents
        # too: many small objects and no cycles; with the cyclic GC on, their allocation
        # would trigger collections that walk the whole ALT model again and again (measured:
        # 20 us per result at 100k tasks instead of 0.3). Paused, as the core does.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return librunner.journal_text(results, [_row_of(document) for document in documents])
        finally:
            if collecting:
                gc.enable()

    @classmethod
    def _queue_lines(cls, queued: list) -> list:
        """The task_results lines of the results' queue, in its order: its lines of rows as
        they are, each run of TaskResults between them in lines of the writer's."""
        lines, results = [], []
        for item in queued:
            if type(item) is librunner.TextWithDoubles:
                if results:
                    lines.append(cls._results_line(results))
                    results = []
                lines.append(item)
            else:
                results.append(item)
        if results:
            lines.append(cls._results_line(results))
        return lines

    def _commit_pending(self) -> int:
        """Writes the queued records, then the queued results, and fsyncs; returns how many
        results it took."""
        with self._commit_lock:
            if not self._records and not self._results and not self.row_sink.rows:
                return 0
            lines, taken = self._pending_lines()
            if lines:
                try:
                    # Written and fsynced without the GIL in one call (one wait to take it back).
                    librunner.write_synced(self._fd, lines)
                except OSError as error:
                    self._failed(error, self.path)
            return taken

    def _pending_lines(self) -> tuple[list, int]:
        """The lines of the queued records, then of the queued results (in the order they
        ended: the drain's lines of rows and the others' between them), taken from the queues,
        and how many results; no lines once a write failed. Results are taken first: a task's
        attempt records, queued before its result, are then never behind it."""
        taken = self.row_sink.close()       # the open line of rows, onto the queue
        results = self._take(self._results)
        docs = self._take(self._records)
        if self.error is not None:
            return [], taken
        ended = [docs.pop()] if docs and docs[-1].get("type") == "run_ended" else []
        newline = orjson.OPT_APPEND_NEWLINE     # no copy of a line to add its end
        try:
            lines = [orjson.dumps(d, option=newline) for d in docs]
        except TypeError:   # a value JSON cannot hold: the line records its text instead
            lines = [orjson.dumps(d, option=newline, default=str) for d in docs]
        lines += self._queue_lines(results)
        lines += [orjson.dumps(d, option=newline, default=str) for d in ended]
        return lines, taken

    def finish(self) -> None:
        """Commits every record written so far and stops the writer thread; the file stays
        locked (the run still writes its products) until release()."""
        self._stop.set()
        self.hurry()
        if self._thread is not None:
            self._thread.wait()
        self._commit_pending()

    def release(self) -> None:
        """Closes the file, which releases its lock: the run is over. Cleaning of dead runs,
        started with the run, is waited for here (the run's caller sees a clean directory)."""
        if self._cleaning is not None:
            self._cleaning.wait()
            self._cleaning = None
        if self._temporary is not None:        # never renamed: no journal.jsonl was made
            with contextlib.suppress(OSError):
                os.unlink(self._temporary)
            self._temporary = None
        if self._alt_file is not None:          # never written: the run's start was not
            fd, temporary = self._alt_file
            self._alt_file = None
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if self._directory_fd >= 0:
            os.close(self._directory_fd)
            self._directory_fd = -1
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        self.finish()
        self.release()


def _start_thread(target, busy: list | None = None) -> threading.Event:
    """Runs target() on a new thread (a daemon: it does not hold the process at exit) and
    returns at once; the Event is set when target has returned or raised (what it raised is
    said as threading says it). `busy`: a token (_give_back) for the gil_busy count raised
    here for the thread, which target gives back; given back here when no thread came."""
    ended = threading.Event()

    def run():
        try:
            target()
        except BaseException:
            threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), None)))
        finally:
            ended.set()

    try:
        if busy is not None:
            librunner.gil_busy(1)
        _thread.start_new_thread(run, ())
    except BaseException:
        # No thread, or a KeyboardInterrupt after it started (then whichever of the two comes
        # first gives the count back, once).
        if busy is not None:
            _give_back(busy)
        raise
    return ended


def _give_back(busy: list) -> None:
    """The gil_busy count `busy` stands for, taken back once, whoever asks first (list.pop is
    atomic under the GIL)."""
    try:
        busy.pop()
    except IndexError:
        return
    librunner.gil_busy(-1)


def _sha256_hex(data: bytes) -> str:
    """hashlib's SHA-256 of `data` on the writer's thread: hashlib lets go of the GIL for it,
    and the drain leaves room for the wait to take it back (gil_busy)."""
    librunner.gil_busy(1)
    try:
        return hashlib.sha256(data).hexdigest()
    finally:
        librunner.gil_busy(-1)


class _Hashing:
    """The SHA-256 of a large document, made on a thread of its own; hexdigest() waits for it
    (and raises what hashing raised)."""

    def __init__(self, data):
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(data,), name="runner-alt-hash", daemon=True)
        self.thread.start()

    def _run(self, data) -> None:
        librunner.gil_busy(1)       # its wait for the GIL after hashing (gil_handoff.pxi)
        try:
            self.digest.update(data)
        except BaseException as error:
            self.error = error
        finally:
            librunner.gil_busy(-1)

    def hexdigest(self) -> str:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest()


def _row_of(document: dict) -> tuple:
    """A result dict (TaskResult.to_dict(), as a journal gave it back) as the row the core
    makes of a TaskResult: journal_row_dict gives the same dict back."""
    fields = librunner.JOURNAL_ROW_FIELDS
    extra = {k: v for k, v in document.items() if k not in fields[:9]}
    return (*(document.get(name) for name in fields[:8]), document.get("execution_id"), extra or None)


def _write_all(fd: int, lines: list) -> None:
    """Writes every line, in order, without joining them into one copy first."""
    pending = [memoryview(line) for line in lines]
    while pending:
        written = os.writev(fd, pending[:1024])     # IOV_MAX is 1024 on Linux
        while written and pending:
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0] = pending[0][written:]
                written = 0


def is_locked(path: Path) -> bool:
    """True when a live process holds the journal at `path` (its run is still going), and
    when that cannot be told (a file that cannot be opened, or not a regular file): the
    cleaning of dead runs then leaves it alone. False when there is no such file. Never
    follows a symlink nor waits on a FIFO put in its place."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return True
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def claim(path: Path) -> int | None:
    """Takes the exclusive lock of the journal at `path`, as its run held it, for a process
    working on that run's behalf (a resume, for its whole run): no second resume and no
    cleaning touches the directory meanwhile. Returns the fd holding it (closing it releases
    the lock), None when there is no such file; BlockingIOError when someone holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def lock_holder(path: Path) -> int | None:
    """The pid holding the journal's lock (Linux's /proc/locks); None when it cannot be told."""
    try:
        info = os.stat(path)
        inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
        with open("/proc/locks") as locks:
            for line in locks:
                fields = line.split()       # "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF"
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
                    return int(fields[4])
    except (OSError, ValueError):
        pass
    return None


def record_resume(directory: Path, last_id: str, run_directory: Path, started_at: str) -> None:
    """Appends a resumed_by record to the journal of the run in `directory`, so that run
    points at the one that resumed it (show). Called by a resume holding that journal's lock."""
    line = orjson.dumps({"type": "resumed_by", "last_id": last_id, "directory": str(run_directory),
                         "started_at": started_at}) + b"\n"
    fd = os.open(directory / JOURNAL_NAME, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _cut_torn_end(fd)
        _write_all(fd, [line])
        os.fsync(fd)
    finally:
        os.close(fd)


def resumes_recorded(path: Path) -> list[dict]:
    """The resumed_by records of the journal at `path`, oldest first, found without parsing the
    rest of it (resume follows them before it reads the journal it resumes). A line cut short
    is not one; any other damage is for RunState to name."""
    data = read_regular_file(path)
    found = []
    at = data.find(b'"resumed_by"')
    while at >= 0:
        end = data.find(b"\n", at)
        if end < 0:
            break
        try:
            record = orjson.loads(data[data.rfind(b"\n", 0, at) + 1:end])
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict) and record.get("type") == "resumed_by":
            found.append(record)
        at = data.find(b'"resumed_by"', end)
    return found


def _cut_torn_end(fd: int) -> None:
    """Truncates the journal open at fd after its last newline: a line its run's crash, or a
    disk that refused its write, cut short. Never whole, so never read; a line appended to it
    would be glued to it, and that line lost."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    tail = min(size, 1 << 16)
    while True:
        chunk = os.pread(fd, tail, size - tail)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, size - tail + cut + 1)
            return
        if tail == size:
            os.ftruncate(fd, 0)
            return
        tail = min(size, tail * 2)


def read_records(path: Path) -> list[dict]:
    """Every complete line of a journal; a last line cut short by a crash (no newline) is left
    out. JournalError for a complete line that is not a JSON object (_numbered_records)."""
    return [record for _, record in _numbered_records(path)]


def read_regular_file(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (at most limit + 1 of them): never through a
    symlink, never blocking on a FIFO or reading a device, which a tampered run directory
    may hold in place of its journal or alt.json. OSError or JournalError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JournalError(f"{path}: not a regular file", pointer=path.name)
        return handle.read() if limit is None else handle.read(limit + 1)


def _numbered_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of every complete line. Only the end of a journal can be cut
    short (a crash, a disk that refused a write: nothing is written after it but by a resume,
    which cuts it off first: record_resume); a complete line that is not a JSON object was
    damaged or edited, and is a JournalError naming it, never skipped: a result or an attempt
    skipped there would make a resume run again a command that completed."""
    data = read_regular_file(path)
    end = data.rfind(b"\n")
    records = []
    # Lines end at "\n" only, as the writer ends them (and as sed, awk and editors number
    # them): a "\r" an edit left inside a line does not start another.
    for number, line in enumerate(data[:end].split(b"\n") if end >= 0 else (), 1):
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise JournalError(f"{path}: line {number} is damaged (not JSON: {error}); the journal cannot be "
                               "read past it", pointer=f"{path.name}:{number}") from None
        if not isinstance(record, dict):
            raise JournalError(f"{path}: line {number} is damaged (JSON, but not an object); the journal "
                               "cannot be read past it", pointer=f"{path.name}:{number}")
        records.append((number, record))
    return records


def _checked_result(path: Path, number: int, result) -> dict:
    """A task result of a task_results line with the fields resume and show rely on of the
    right type; JournalError naming the line otherwise (the journal may have been edited)."""
    problem = None
    if not isinstance(result, dict) or not isinstance(result.get("task_id"), str):
        problem = "a task result without a string task_id"
    elif not isinstance(result.get("status"), str):
        problem = f"task {result['task_id']!r}: status is not a string"
    elif not isinstance(result.get("metadata"), (dict, type(None))):
        problem = f"task {result['task_id']!r}: metadata is not an object"
    if problem:
        raise JournalError(f"{path}: line {number}: {problem}", pointer=f"{path.name}:{number}")
    return result


def _checked_attempt(path: Path, number: int, record: dict) -> tuple:
    task_id, attempt = record.get("task_id"), record.get("attempt")
    if not isinstance(task_id, str) or type(attempt) is not int:
        raise JournalError(f"{path}: line {number}: {record.get('type')} without a string task_id "
                           "and a whole attempt number", pointer=f"{path.name}:{number}")
    return task_id, attempt


def _results_of(path: Path, number: int, record: dict) -> list:
    """The task results of a task_results line (full or inline rows), each as
    TaskResult.to_dict() gave it."""
    results = librunner.journal_row_dicts(record.get("fields"), record.get("rows"))
    if results is None:
        raise JournalError(f"a task_results line with unknown fields {record.get('fields')!r}",
                           pointer=f"{path.name}:{number}")
    return results


class RunState:
    """What a run's journal says: how it started, each task's latest result, what was running.

    Read from any run directory: one still going (locked), one interrupted, one finished.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        # Many small dicts, no reference cycles: the cyclic GC, triggered again and again by
        # their allocation, cost twice the reading itself at 100k results. Paused meanwhile.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._read(self.directory / JOURNAL_NAME)
        finally:
            if collecting:
                gc.enable()
        self.live = is_locked(self.directory / JOURNAL_NAME)
        self.complete = (self.directory / "last.json").is_file()

    def _read(self, path: Path) -> None:
        numbered = _numbered_records(path)
        records = [record for _, record in numbered]
        if records and records[0].get("type") != "run_started":
            raise JournalError(f"{path}: not a run journal (its first line is not a run_started record)",
                               pointer=f"{path.name}:{numbered[0][0]}")
        # Empty for the first moments of a run (its first commit is COMMIT_SECONDS away).
        self.start: dict = records[0] if records else {}
        if not isinstance(self.start.get("last_id") or "", str):       # null: the directory's name
            raise JournalError(f"{path}: line {numbered[0][0]}: run_started's last_id is not a string",
                               pointer=f"{path.name}:{numbered[0][0]}")
        written = self.start.get("format")
        if type(written) is int and written > FORMAT:
            raise JournalError(f"{path}: written by a later librunner (journal format {written}; this one reads "
                               f"formats up to {FORMAT}): resume or show it with that version",
                               pointer=f"{path.name}:{numbered[0][0]}")
        self.results: dict[str, dict] = {}          # task id -> result dict, in finishing order
        self.running: dict[str, int] = {}           # task id -> attempt number in flight
        self.attempts = 0
        self.ai_calls = 0
        self.ended: dict | None = None
        self.resumed_by: list[dict] = []            # the resumes of this run, oldest first
        self.segments: dict[str, object] = {}       # task id -> its own output (segment_completed)
        self.workers: dict[str, tuple] = {}         # task id -> (attempt, Dask worker address) it started on
        # attempt_process records of attempts that never ended (runner.execution.processes)
        unended = processes.Unended()
        for number, record in numbered[1:]:
            kind = record.get("type")
            if kind == "task_results":
                for result in _results_of(path, number, record):
                    result = _checked_result(path, number, result)
                    self.results[result["task_id"]] = result
                    self.running.pop(result["task_id"], None)
            elif kind == "attempt_started":
                task_id, attempt = _checked_attempt(path, number, record)
                self.running[task_id] = attempt
                self.attempts += 1
            elif kind == "attempt_ended":
                task_id, attempt = _checked_attempt(path, number, record)
                if self.running.get(task_id) == attempt:
                    del self.running[task_id]
                unended.add(record)
                if record.get("ai"):
                    self.ai_calls += 1
            elif kind == "run_ended":
                self.ended = record
            elif kind == "attempt_process":
                unended.add(record)
            elif kind == "attempt_worker" and isinstance(record.get("worker"), str):
                task_id, attempt = _checked_attempt(path, number, record)
                self.workers[task_id] = (attempt, record["worker"])
            elif kind == "segment_completed" and isinstance(record.get("task_id"), str):
                self.segments[record["task_id"]] = record.get("output")
            elif kind == "resumed_by" and isinstance(record.get("last_id"), str):
                self.resumed_by.append({"last_id": record["last_id"], "directory": str(record.get("directory")),
                                        "started_at": record.get("started_at")})
        self.processes: list[dict] = unended.records()

    @property
    def last_id(self) -> str:
        return self.start.get("last_id") or self.directory.name

    @property
    def state(self) -> str:
        """running, complete (last.json written) or interrupted (the process is gone, or it
        stopped before its LAST file)."""
        if self.complete:
            return "complete"
        return "running" if self.live else "interrupted"

    def alt_source(self) -> bytes:
        """alt.json: a regular file, read to at most RUNNER_MAX_ALT_BYTES + 1 (the parser refuses more)."""
        return read_regular_file(self.directory / ALT_NAME, librunner.AltLimits().max_bytes)

    def record_line(self, task_id: str, kind: str = "task_results") -> int | None:
        """The number of the last journal line of type `kind` that holds `task_id`: its result
        (task_results, in a row) or its record (segment_completed...); None if none does.
        Reads the journal again: for errors that name where something came from, not for
        every result."""
        path = self.directory / JOURNAL_NAME
        found = None
        for number, record in _numbered_records(path):
            if record.get("type") != kind:
                continue
            if kind == "task_results":
                rows = librunner.journal_row_dicts(record.get("fields"), record.get("rows")) or ()
                if any(type(row) is dict and row.get("task_id") == task_id for row in rows):
                    found = number
            elif record.get("task_id") == task_id:
                found = number
        return found

    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.get("status")] = counts.get(result.get("status"), 0) + 1
        return counts
