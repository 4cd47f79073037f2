"""What `run` does to spend less of a large run's time outside the run itself keeps its
behaviour: alt.json hashed while it is written gives the journal the same SHA-256, the
command's freezing of bulk allocations ends with the command (nothing stays frozen, no
callback stays installed) and leaves exit codes and output as they were."""
from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys

import orjson

from runner.cli import main
from runner.execution import journal


def big_alt(path, tasks: int = 12_000):
    docs = [{"id": f"t{i}", "description": "d" * 80, "dependencies": [f"t{i - 1}"] if i % 50 else [],
             "parameters": {"task_type": "generic"}} for i in range(tasks)]
    path.write_bytes(orjson.dumps({"id": "wall", "title": "wall", "tasks": docs}))
    return path


def first_record(directory):
    with open(directory / "journal.jsonl", "rb") as handle:
        return json.loads(handle.readline())


def test_a_large_alt_file_is_hashed_beside_its_write(tmp_path):
    alt = big_alt(tmp_path / "big.json")
    assert alt.stat().st_size >= journal.HASH_ASIDE_BYTES       # the hash goes to a thread of its own
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(alt), "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    directory = tmp_path / "out" / done.stdout.strip().splitlines()[-1].rsplit("/", 1)[-1]
    stored = (directory / "alt.json").read_bytes()
    assert first_record(directory)["alt_sha256"] == hashlib.sha256(stored).hexdigest()
    assert (directory / "graph.dot").read_text().count(" -> ") == 12_000 - 12_000 // 50


def test_a_small_alt_file_is_hashed_as_before(tmp_path):
    alt = big_alt(tmp_path / "small.json", 3)
    directory = tmp_path / "run"
    directory.mkdir()
    data = alt.read_bytes()
    kept = journal.Journal(directory, data)
    first = {"type": "run_started", "alt_sha256": None}
    kept.start(first)
    kept.close()
    assert first["alt_sha256"] == hashlib.sha256(data).hexdigest() == first_record(directory)["alt_sha256"]


def test_the_commands_freezing_ends_with_it(tmp_path, capsys):
    callbacks = list(gc.callbacks)
    alt = big_alt(tmp_path / "big.json", 2_000)
    code = main(["run", str(alt), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    assert gc.get_freeze_count() == 0 and gc.callbacks == callbacks and gc.isenabled()
    printed = capsys.readouterr()
    assert printed.out.strip().startswith(str(tmp_path / "out"))
    # A file refused before the run keeps its exit code (2).
    failing = tmp_path / "failing.json"
    failing.write_bytes(orjson.dumps({"id": "f", "title": "f", "tasks": [
        {"id": "a", "description": "x", "parameters": {"task_type": "no_such_type_here"}}]}))
    code = main(["run", str(failing), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    assert "no_such_type_here" in capsys.readouterr().err
    assert gc.get_freeze_count() == 0 and gc.callbacks == callbacks


def test_a_process_that_froze_objects_itself_keeps_them_frozen(tmp_path):
    """A host that froze what it holds (the service does) is not thawed by a run of the command."""
    alt = big_alt(tmp_path / "big.json", 50)
    script = (
        "import gc, sys\n"
        "from runner.cli import main\n"
        "held = [[] for _ in range(10)]\n"
        "gc.freeze()\n"
        "frozen = gc.get_freeze_count()\n"
        f"code = main(['run', {str(alt)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "assert code == 0, code\n"
        "assert gc.get_freeze_count() > frozen // 2, (gc.get_freeze_count(), frozen)\n"  # not thawed: 0
        "assert all(gc.is_tracked(item) for item in held)\n"
        "print('kept')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("kept")


def test_garbage_a_task_handler_makes_during_the_run_is_collected_during_the_run(tmp_path):
    """Only the ALT model is frozen: a handler's cyclic garbage, even a bulk made with the
    collector paused (as the core pauses it, process-wide), is collected while the run goes on."""
    alt = tmp_path / "cycles.json"
    alt.write_bytes(orjson.dumps({"id": "cyc", "title": "t", "tasks": [
        {"id": "make", "description": "d", "parameters": {"task_type": "cyclic"}},
        {"id": "count", "description": "d", "dependencies": ["make"], "parameters": {"task_type": "collected"}}]}))
    script = (
        "import gc, runner\n"
        "from runner.cli import main\n"
        "freed = [0]\n"
        "class Node:\n"
        "    def __del__(self):\n"
        "        freed[0] += 1\n"
        "@runner.task_type('cyclic')\n"
        "def cyclic(task):\n"
        "    gc.disable()\n"
        "    for _ in range(60_000):\n"
        "        a, b = Node(), Node()\n"
        "        a.peer, b.peer = b, a\n"
        "    gc.enable()\n"
        "    return {'made': 120_000}\n"
        "@runner.task_type('collected')\n"
        "def collected(task):\n"
        # gc.collect() returns at once while another thread's collection is under way (its
        # finalizers hand the GIL round): asked again until that one has ended too, for a while.
        "    import time\n"
        "    deadline = time.monotonic() + 20\n"
        "    while True:\n"
        "        gc.collect()\n"
        "        if freed[0] >= 120_000 or time.monotonic() > deadline:\n"
        "            return {'freed': freed[0]}\n"
        "        time.sleep(0.01)\n"
        f"code = main(['run', {str(alt)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "assert code == 0, code\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    directory = next((tmp_path / "out").iterdir())
    record = orjson.loads((directory / "last.json").read_bytes())
    assert record["task_results"]["count"]["output"] == {"freed": 120_000}


def test_early_writeback_writes_every_byte_and_syncs_as_it_goes(tmp_path):
    from runner.last.atomic_files import EarlyWriteback, atomic_file

    pieces = [bytes([n % 251]) * (n * 37 % 5000 + 1) for n in range(400)]
    with atomic_file(tmp_path / "big.json") as handle:
        syncing = EarlyWriteback(handle, step=10_000)
        for piece in pieces:
            syncing.write(piece)
        assert syncing.thread is not None and syncing.thread.is_alive()
        syncing.finish()
        assert syncing.thread is None
    assert (tmp_path / "big.json").read_bytes() == b"".join(pieces)


def test_an_early_sync_that_fails_is_raised_at_the_end():
    """fdatasync of a pipe fails (EINVAL): the error is the writer's, at finish()."""
    import errno
    import os
    import threading
    import time

    from runner.last.atomic_files import EarlyWriteback

    read_end, write_end = os.pipe()
    drained = threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(read_end, 65536), b"")])
    drained.start()
    with os.fdopen(write_end, "wb") as handle:
        syncing = EarlyWriteback(handle, step=1000)
        for _ in range(20):
            syncing.write(b"x" * 500)
        for _ in range(3000):           # until the thread has tried (finish() skips a sync not begun)
            if syncing.error is not None:
                break
            time.sleep(0.01)
        try:
            syncing.finish()
        except OSError as error:
            assert error.errno == errno.EINVAL
        else:
            raise AssertionError("the early sync's error was not raised")
    drained.join()
    os.close(read_end)
