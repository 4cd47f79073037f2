"""The core's GIL hand-over to the journal's writer (runner/core/gil_handoff.pxi):
write_synced writes what os.writev and os.fsync would, renames and fsyncs the directory when
asked, and fails as they do; a writer napping and writing while the run's thread drains
inline tasks ends, and so does the drain, with every result. No timings."""
from __future__ import annotations

import os
import threading

import orjson
import pytest

from runner import librunner, parse_alt_file
from runner.execution import execute

from conftest import wait_until


def test_write_synced_writes_every_chunk_in_order(tmp_path):
    path = tmp_path / "f"
    chunks = [b"", b"a", b"\x00\xff" * 3, "é\udcff".encode("utf-8", "surrogatepass"), os.urandom(1 << 20)]
    chunks += [bytes([i % 256]) * (i % 7) for i in range(3000)]       # more than IOV_MAX (1024) chunks
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        librunner.write_synced(fd, chunks)
        librunner.write_synced(fd, (b"tail",), sync=False)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(chunks) + b"tail"


def test_write_synced_closes_renames_and_syncs_the_directory(tmp_path):
    fd = os.open(tmp_path / ".x.tmp", os.O_WRONLY | os.O_CREAT)
    directory = os.open(tmp_path, os.O_RDONLY)
    try:
        librunner.write_synced(fd, [b"whole"], close=True, rename_from=os.fsencode(tmp_path / ".x.tmp"),
                               rename_to=os.fsencode(tmp_path / "x"), directory_fd=directory)
    finally:
        os.close(directory)
    assert sorted(os.listdir(tmp_path)) == ["x"] and (tmp_path / "x").read_bytes() == b"whole"
    with pytest.raises(OSError):
        os.fstat(fd)        # closed


def test_write_synced_fails_as_os_calls_do(tmp_path):
    fd = os.open(tmp_path / "r", os.O_RDONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError) as raised:
            librunner.write_synced(fd, [b"x"])
        assert raised.value.errno == 9 and raised.value.strerror      # EBADF, as os.writev says
        with pytest.raises(TypeError, match="chunk 1 is str"):
            librunner.write_synced(fd, [b"x", "y"])
        with pytest.raises(OSError) as raised:
            librunner.write_synced(fd, [], rename_from=os.fsencode(tmp_path / "absent"),
                                   rename_to=os.fsencode(tmp_path / "y"))
        assert raised.value.errno == 2
    finally:
        os.close(fd)


def test_write_synced_closes_fd_when_asked_even_when_a_chunk_is_refused(tmp_path):
    for refused in ("text", bytearray(b"x")):
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(TypeError):
            librunner.write_synced(fd, [b"a", refused], close=True)
        with pytest.raises(OSError):
            os.fstat(fd)        # closed (EBADF), as its docstring promises
    assert (tmp_path / "f").read_bytes() == b""


def test_a_writer_napping_and_writing_beside_a_long_drain_ends_and_so_does_the_drain(tmp_path):
    stop = threading.Event()
    rounds = []

    def writer():
        fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT)
        librunner.gil_busy(1)
        try:
            while not stop.is_set():
                librunner.gil_nap(0.0005)
                librunner.write_synced(fd, [b"x" * 100], sync=False)
                rounds.append(1)
        finally:
            librunner.gil_busy(-1)
            os.close(fd)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        doc = {"id": "d", "title": "d", "tasks": [
            {"id": f"t{i}", "description": "d", "parameters": {"task_type": "generic"}} for i in range(50_000)]}
        outcome = execute(doc, write=False, environ={})
    finally:
        stop.set()
        thread.join()
    assert len(outcome.results) == 50_000 and outcome.all_completed
    assert rounds and (tmp_path / "w").stat().st_size == 100 * len(rounds)


def test_a_forked_child_starts_with_nobody_waiting_for_the_gil():
    """A fork that catches the writer between its I/O and the GIL (its count raised) leaves
    no raised count in the child, where no writer is: its drains never pause for one."""
    import os

    librunner.gil_busy(1)
    librunner.gil_busy(1)
    try:
        assert librunner.gil_handoff_counts() == (0, 2)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:      # the child: report its counts, then leave at once
            os.write(write_end, repr(librunner.gil_handoff_counts()).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            seen = pipe.read()
        os.waitpid(child, 0)
    finally:
        librunner.gil_busy(-1)
        librunner.gil_busy(-1)
    assert seen == b"(0, 0)"
    assert librunner.gil_handoff_counts() == (0, 0)


def nap_in_thread(seconds: float, since=None) -> threading.Thread:
    napper = threading.Thread(target=librunner.gil_nap, args=(seconds, since), daemon=True)
    napper.start()
    return napper


def wake_until_ended(napper: threading.Thread) -> None:
    """Wakes until the napper's minute-long nap has ended (its start is not seen from here)."""
    for _ in range(600):
        librunner.gil_wake()
        napper.join(0.05)
        if not napper.is_alive():
            return


def test_a_nap_ends_at_a_wake_and_at_one_that_came_after_the_naps_look():
    """The streaming writer naps POLL_SECONDS between looks at its queue; the run's end (and
    a hurry) wakes it rather than waiting the nap out. A wake between the writer's look and
    its nap counts too (`since`): the nap then does not begin."""
    napper = nap_in_thread(60.0)
    wake_until_ended(napper)
    assert not napper.is_alive()        # woken: it would have slept a minute
    looked = librunner.gil_nap_seen()
    librunner.gil_wake()
    librunner.gil_nap(60.0, looked)     # returns at once (this test would take a minute)
    assert librunner.gil_handoff_counts() == (0, 0)


def test_a_forked_child_naps_and_wakes():
    """A child forked while a thread of its parent naps (the naps' lock and condition made
    anew in the child) naps and is woken."""
    holder = nap_in_thread(60.0)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        napper = nap_in_thread(60.0)
        wake_until_ended(napper)
        librunner.gil_nap(0.001)
        os.write(write_end, b"alive" if napper.is_alive() else b"woken")
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        seen = pipe.read()
    os.waitpid(child, 0)
    wake_until_ended(holder)
    assert seen == b"woken" and not holder.is_alive()


def test_a_nap_longer_than_the_clock_can_hold_naps_until_woken():
    """A nap of more than a day (inf, 1e12 s: past what a deadline holds) is a day's, which
    a wake ends; none of them spins (review 10: the deadline overflowed and the nap looped
    on EINVAL, its lock held, so no wake could come). NaN and less than 0: no nap."""
    for seconds in (float("inf"), 1e10, 1e12, 1e300):
        napper = nap_in_thread(seconds)
        wake_until_ended(napper)
        assert not napper.is_alive(), seconds
    for seconds in (float("nan"), -1.0, float("-inf"), 0.0):
        librunner.gil_nap(seconds)      # returns at once
    with pytest.raises(TypeError):
        librunner.gil_nap(1.0, 1.5)     # a count, not a float that would be cut to one
    assert librunner.gil_handoff_counts() == (0, 0)


def nothing_counted() -> bool:
    """True once no drain, writer or busy wait is counted: a run an earlier test left going on
    a thread of its own (the counts are the process's) may still be ending; a count that was
    never given back stays, and this is False after 10 s."""
    return wait_until(lambda: librunner.gil_spin_counts() == (0, 0) and librunner.gil_handoff_counts() == (0, 0), 10)


def generic_tasks(count: int) -> dict:
    return {"id": "d", "title": "d", "tasks": [
        {"id": f"t{i}", "description": "d", "parameters": {"task_type": "generic"}} for i in range(count)]}


def test_a_writer_that_lets_go_of_the_gil_its_own_way_still_lets_the_drain_end():
    """The drain spins a bounded while for a writer to let go of the GIL at its next hand-over
    point; a writer that lets go otherwise (a sleep, a lock) costs the drain that while and
    no more: both end, every result in, and nothing is left counted."""
    import time

    stop = threading.Event()
    rounds = []

    def writer():
        while not stop.is_set():
            librunner.gil_nap(0.0002)
            time.sleep(0.0005)      # lets go of the GIL as Python does, not at a hand-over point
            rounds.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        outcome = execute(generic_tasks(50_000), write=False, environ={})
    finally:
        stop.set()
        thread.join()
    assert len(outcome.results) == 50_000 and outcome.all_completed and rounds
    assert nothing_counted()


def test_a_drain_that_raises_is_no_longer_counted():
    """A drain ended by its callback's error is not counted as running: writers would
    otherwise spin for it at every hand-over, for the life of the process."""
    scheduler = librunner.Scheduler(parse_alt_file(orjson.dumps(generic_tasks(10))), inline_types=frozenset({"generic"}))

    def refuse(index, result):
        raise RuntimeError("the callback's own error")

    with pytest.raises(RuntimeError, match="the callback's own error"):
        scheduler.run_inline({}, refuse)
    assert nothing_counted()


def test_a_child_forked_during_a_drain_counts_no_drain():
    """A fork made by another thread while the run's thread drains: the child has no drain
    (only the forking thread), so its writers never spin for one."""
    read_end, write_end = os.pipe()
    forked = []

    def fork_once():
        while librunner.gil_spin_counts()[0] == 0:
            if forked:      # the run is over: no drain was seen
                return
            librunner.gil_nap(0.0001)
        child = os.fork()
        if child == 0:
            os.write(write_end, repr(librunner.gil_spin_counts()).encode())
            os._exit(0)
        forked.append(child)

    thread = threading.Thread(target=fork_once)
    thread.start()
    try:
        outcome = execute(generic_tasks(200_000), write=False, environ={})
    finally:
        forked.append(None)     # ends the thread's wait if the drain was over before it looked
        thread.join()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        seen = pipe.read()
    if forked[0] is not None:
        os.waitpid(forked[0], 0)
    assert outcome.all_completed
    assert forked[0] is not None, "the drain ended before the thread saw it: make it longer"
    assert seen == b"(0, 0)"


def test_write_synced_hashes_what_it_writes_when_asked(tmp_path):
    """digest=True: the SHA-256 of every chunk written, in order (a TextWithDoubles as its
    doubles' text made), as hashlib makes it; None when not asked."""
    import hashlib

    if not librunner.sha256_without_gil():
        pytest.skip("no libcrypto found beside hashlib: write_synced cannot hash here")
    data = os.urandom(3 * 1024 * 1024 + 17)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        scheduler = librunner.Scheduler(parse_alt_file(orjson.dumps(generic_tasks(3))),
                                        inline_types=frozenset({"generic"}))
        ended = {}
        scheduler.run_inline(ended)
        text = librunner.journal_text(list(ended.values()))      # inline rows: their doubles made by write_synced
        digest = librunner.write_synced(fd, [data, b"", text], digest=True)
        assert librunner.write_synced(fd, [b"more"]) is None
        assert librunner.write_synced(fd, [], digest=True) == hashlib.sha256(b"").hexdigest()
    finally:
        os.close(fd)
    written = (tmp_path / "f").read_bytes()
    assert written == data + bytes(text) + b"more"
    assert digest == hashlib.sha256(data + bytes(text)).hexdigest()


def test_a_wait_for_a_let_go_ends_at_a_writers_hand_over_point_and_at_its_bound():
    seen = librunner.gil_let_go_seen()
    writer = threading.Thread(target=librunner.gil_nap, args=(0.0,))
    writer.start()
    librunner.gil_wait_let_go(seen, 60.0)       # returns at the nap's let-go, not in a minute
    writer.join()
    assert librunner.gil_let_go_seen() != seen
    librunner.gil_wait_let_go(librunner.gil_let_go_seen(), 0.001)    # nobody: the bound
    for seconds in (float("nan"), -1.0, 0.0):
        librunner.gil_wait_let_go(librunner.gil_let_go_seen(), seconds)     # at once


def test_a_drain_into_a_journals_queue_wakes_its_napping_writer():
    """The drain wakes the journal's writer every JOURNAL_LOOK results it queues, so that the
    writer takes them as they come, not at the end of its nap."""
    scheduler = librunner.Scheduler(parse_alt_file(orjson.dumps(generic_tasks(5000))),
                                    inline_types=frozenset({"generic"}))
    napper = nap_in_thread(60.0, librunner.gil_nap_seen())
    queue = librunner.RowSink([])
    assert scheduler.run_inline({}, queue) == 5000 and queue.rows == 5000
    napper.join(30)
    assert not napper.is_alive()        # woken by the drain: it would have slept a minute


def test_write_synced_closes_fd_when_asked_even_when_chunks_is_not_a_sequence(tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(TypeError):
        librunner.write_synced(fd, 5, close=True)
    with pytest.raises(OSError):
        os.fstat(fd)        # closed (EBADF), as its docstring promises


def test_a_journals_writer_counts_as_busy_for_its_first_hold_of_the_gil_and_hashlib_not_its_whole_start(
        tmp_path, monkeypatch):
    """While a writer counts as busy a drain pauses every INLINE_GIL_YIELD tasks (~0.16 ms each
    on these machines): the count stands for the writer's waits that the hand-over does not
    route (its thread's first hold of the GIL, hashlib's hashing), not for its whole start,
    whose writes go through write_synced's hand-over."""
    import hashlib

    from runner.execution import journal as journal_file

    seen = []

    class Counting:
        def __getattr__(self, name):
            return getattr(librunner, name)

        def write_synced(self, *args, **kwargs):
            seen.append(("write", librunner.gil_handoff_counts()[1]))
            return librunner.write_synced(*args, **kwargs)

    class Hashing:
        def sha256(self, data=b""):
            seen.append(("hash", librunner.gil_handoff_counts()[1]))
            return hashlib.sha256(data)

    monkeypatch.setattr(journal_file, "librunner", Counting())
    monkeypatch.setattr(journal_file, "hashlib", Hashing())
    assert execute(generic_tasks(3), tmp_path / "a", write=False, journal=True, environ={}).all_completed
    assert seen[:2] == [("write", 0), ("write", 0)]     # alt.json, then the journal's first lines
    # Where there is no libcrypto beside hashlib: hashed by hashlib, counted as busy meanwhile.
    monkeypatch.setattr(journal_file, "SHA256_WITHOUT_GIL", False)
    seen.clear()
    assert execute(generic_tasks(3), tmp_path / "b", write=False, journal=True, environ={}).all_completed
    assert ("hash", 1) in seen and [busy for kind, busy in seen if kind == "write"][:2] == [0, 0]
    assert librunner.gil_handoff_counts() == (0, 0)
