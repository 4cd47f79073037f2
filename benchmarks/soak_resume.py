#!/usr/bin/env python3
"""Randomized kill/resume soak of durable runs (issue 18): is a completed side effect ever
done twice?

Each scenario is one ALT document (seeded): chains and fan-outs of `file_operation`
appends and `system_command` commands (`python -I -S -c ...`, no shell) that append a line
with a unique token to `effects.log` in the run's workspace (`--workspace W`), generic
tasks between them, and control-flow documents (a native `for_each` and a v2.0 file with a
`for_range` loop and function calls) whose instances append too. The document is run
with `python -m runner run`; at random moments (chosen by events: "N more lines in the
log", or a random delay after the start, so they land during a run, during a resume's
start or while it waits for an earlier run's commands) the process gets SIGKILL or
SIGTERM, and `python -m runner resume` of the newest run directory with a journal follows,
killed the same way, until one ends by itself with every task completed.

What is checked, from the log and the journals (every line says which command wrote it,
when it started and when it appended):
- every effect happened at least once, and the last run's LAST file has every task completed;
- a cycle (one `run` or `resume` process) never repeats an effect whose task was completed
  in the journal it resumed (re-running a recorded result is the bug of issue 18);
- no cycle does an effect twice, and a cycle killed before its journal existed did nothing;
- every duplicate is an effect a killed cycle did, or had under way, whose completed
  result its journal did not hold: the window between an effect and its record (the
  command ran on, or ended and its result was not committed yet). Counted per kill.

Prints cycles, kills, duplicates (in all, per kill, the maximum), and exits 1 with the
reasons on any failure. `make soak` runs it for minutes; tests/test_soak_resume.py runs a
short fixed slice (--cycles, fixed seed).

    .venv/bin/python benchmarks/soak_resume.py --seconds 300 --seed 1
    .venv/bin/python benchmarks/soak_resume.py --scenarios 3 --seed 7 --keep /tmp/soak
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PYTHON = os.path.realpath(sys.executable)
LOG = "effects.log"
# The command's line: token, its own start (clock ticks since boot, /proc/self/stat), the
# parent it had when it appended (the runner, or 1/a subreaper once orphaned), wall times
# of its start and of the append, and how long it goes on after the append.
COMMAND = (
    "import os,sys,time\n"
    "t0=time.time()\n"
    "s=open('/proc/self/stat','rb').read();st=int(s[s.rfind(b')')+2:].split()[19])\n"
    "time.sleep(float(sys.argv[2]))\n"
    "fd=os.open('" + LOG + "',os.O_WRONLY|os.O_APPEND|os.O_CREAT,0o644)\n"
    "os.write(fd,('%s cmd %d %d %.6f %.6f %s\\n'%(sys.argv[1],st,os.getppid(),t0,time.time(),sys.argv[3])).encode())\n"
    "time.sleep(float(sys.argv[3]))\n"
)
TICKS = os.sysconf("SC_CLK_TCK")


# ---- documents ------------------------------------------------------------------------------

def command(token: str, rng: random.Random) -> list:
    before = rng.choice([0, 0, 0, 0.01, 0.05])
    after = rng.choice([0, 0, 0, 0.02, 0.2])
    return [PYTHON, "-I", "-S", "-c", COMMAND, token, str(before), str(after)]


def effect_parameters(token: str, rng: random.Random, kind: str) -> dict:
    if kind == "cmd":
        return {"task_type": "system_command", "command": command(token, rng)}
    return {"task_type": "file_operation", "operation": "append", "path": LOG, "content": f"{token} file\n"}


@dataclass
class Document:
    doc: dict
    effects: dict = field(default_factory=dict)     # token -> task id (instances: their id)
    name: str = ""


def flat_document(rng: random.Random, number: int) -> Document:
    """A DAG of effects and generic tasks: chains (a task after the one before) and fan-outs
    (several after one, joined later)."""
    size = rng.randint(8, 24)
    tasks, effects, ids = [], {}, []
    for i in range(size):
        task_id = f"t{i}"
        shape = rng.random()
        if not ids:
            deps = []
        elif shape < 0.45:
            deps = [ids[-1]]                                    # chain
        elif shape < 0.8:
            deps = [rng.choice(ids[max(0, len(ids) - 4):])]     # fan-out from a recent task
        else:
            deps = sorted(set(rng.sample(ids, min(len(ids), rng.randint(2, 3)))))     # join
        kind = rng.choices(["cmd", "file", "generic"], [5, 4, 1])[0]
        if kind == "generic":
            parameters = {"task_type": "generic", "n": i}
        else:
            parameters = effect_parameters(task_id, rng, kind)
            effects[task_id] = task_id
        tasks.append({"id": task_id, "description": task_id, "dependencies": deps, "parameters": parameters})
        ids.append(task_id)
    return Document({"id": f"soak{number}", "title": "soak", "tasks": tasks}, effects, "flat")


def for_each_document(rng: random.Random, number: int) -> Document:
    """A native for_each over items whose instances append, between effects before and after."""
    items = list(range(rng.randint(3, 8)))
    kind = rng.choice(["cmd", "file"])
    effects = {"head": "head", "tail": "tail"}
    mapped = effect_parameters("m-$x", rng, kind)
    effects.update({f"m-{x}": f"m[{x}]" for x in items})
    tasks = [{"id": "head", "description": "h", "parameters": effect_parameters("head", rng, "cmd")},
             {"id": "m", "description": "m", "dependencies": ["head"], "for_each": {"variable": "x", "iterable": "items"},
              "parameters": mapped},
             {"id": "tail", "description": "t", "dependencies": ["m"], "parameters": effect_parameters("tail", rng, "file")}]
    return Document({"id": f"soak{number}", "title": "soak for_each", "variables": {"items": items}, "tasks": tasks},
                    effects, "for_each")


def v2_document(rng: random.Random, number: int) -> Document:
    """A v2.0 file: a for_range loop whose body is two effects in a chain (its own segment
    generic or an effect too), and two calls of a function whose body appends."""
    def segment(segment_id, parameters, deps=(), **fields):
        kind = parameters.pop("task_type")
        return {"id": segment_id, "task_type": kind, "content": f"do {segment_id}",
                "parameters": [{"name": k, "value": v} for k, v in parameters.items()],
                "dependencies": list(deps), **fields}

    count = rng.randint(2, 5)
    effects = {"first": "first", "last": "last"}
    for i in range(count):
        effects[f"b1-{i}"] = f"b1[{i}]"
        effects[f"b2-{i}"] = f"b2[{i}]"
    for call in ("c1", "c2"):
        effects[f"f1-{call}"] = f"{call}/f1"
    # The loop's own segment: generic, or an effect itself (journaled as segment_completed
    # when its loop starts, so a resume replays the loop without repeating it).
    carrier = rng.choice(["generic", "cmd", "file"])
    if carrier != "generic":
        effects["loop"] = "loop"
    segments = [
        segment("first", effect_parameters("first", rng, "file")),
        segment("loop", {"task_type": "generic"} if carrier == "generic" else effect_parameters("loop", rng, carrier),
                ["first"],
                loop={"type": "for_range", "variable": "i", "start": 0, "end": count, "step": 1, "body": ["b1", "b2"]}),
        segment("b1", effect_parameters("b1-$i", rng, "cmd")),
        segment("b2", effect_parameters("b2-$i", rng, "file"), ["b1"]),
        segment("c1", {"task_type": "generic"}, ["loop"], function_call={"function_name": "mark", "arguments": {"n": "c1"}}),
        segment("c2", {"task_type": "generic"}, ["c1"], function_call={"function_name": "mark", "arguments": {"n": "c2"}}),
        segment("f1", effect_parameters("f1-$n", rng, rng.choice(["cmd", "file"]))),
        segment("last", effect_parameters("last", rng, "cmd"), ["c2"]),
    ]
    functions = [{"name": "mark", "parameters": [{"name": "n", "type": "string", "required": True}], "body": ["f1"]}]
    doc = {"id": f"soak-v2-{number}", "version": "2.0", "command": "soak", "language": "en", "mode": "Normal",
           "segments": segments, "global_variables": [], "functions": functions}
    return Document(doc, effects, "v2")


def document(rng: random.Random, number: int, control_flow: bool) -> Document:
    choice = rng.random()
    if control_flow and choice < 0.2:
        return for_each_document(rng, number)
    if control_flow and choice < 0.4:
        return v2_document(rng, number)
    return flat_document(rng, number)


# ---- the log --------------------------------------------------------------------------------

@dataclass
class Effect:
    token: str
    kind: str                   # cmd or file
    offset: int                 # byte offset of its line in the log
    start_ticks: int = 0        # a command's start, clock ticks since boot
    ppid: int = 0
    started: float = 0.0        # wall times (commands)
    appended: float = 0.0
    after: float = 0.0          # how long the command ran on after its append
    cycle: int = -1


def read_log(path: Path) -> list[Effect]:
    if not path.exists():
        return []
    effects, offset = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        fields = line.decode().split()
        if line.endswith(b"\n") and len(fields) >= 2:
            if fields[1] == "cmd" and len(fields) == 7:
                effects.append(Effect(fields[0], "cmd", offset, int(fields[2]), int(fields[3]), float(fields[4]),
                                      float(fields[5]), float(fields[6])))
            elif fields[1] == "file":
                effects.append(Effect(fields[0], "file", offset))
        offset += len(line)
    return effects


def now_ticks() -> int:
    with open("/proc/uptime") as handle:
        return int(float(handle.read().split()[0]) * TICKS)


def process_start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    return int(data[data.rfind(b")") + 2:].split()[19])


# ---- cycles ---------------------------------------------------------------------------------

@dataclass
class Cycle:
    number: int
    argv: list
    resumed: Path | None                 # the directory it resumed (None: a fresh run)
    durable_before: set                  # task ids completed in that directory's journal
    start_ticks: int = 0
    log_start: int = 0                   # log size when it started and when it was gone
    log_end: int = 0
    signal: int | None = None            # what it was sent
    killed_at: float = 0.0
    returncode: int | None = None
    directory: Path | None = None        # the LAST directory it made (with a journal)
    completed: set = field(default_factory=set)
    journaled_groups: set = field(default_factory=set)
    stderr: str = ""


def completed_in(directory: Path) -> tuple[set, set, dict]:
    """(completed task ids, process groups journaled, RunState) of a run directory."""
    from runner.execution import processes
    from runner.execution.journal import RunState
    state = RunState(directory)
    done = {task_id for task_id, result in state.results.items() if result.get("status") == "completed"}
    groups = {r.get("pgid") for r in processes.recorded(directory)}
    return done, groups, state


def has_journal(directory: Path) -> bool:
    try:
        with open(directory / "journal.jsonl", "rb") as handle:
            return b'"run_started"' in handle.readline()
    except OSError:
        return False


class Scenario:
    def __init__(self, number: int, rng: random.Random, root: Path, environ: dict, control_flow: bool,
                 kill_probability: float, max_kills: int, say):
        self.number = number
        self.rng = rng
        self.document = document(rng, number, control_flow)
        self.root = root / f"s{number}"
        self.out = self.root / "out"
        self.workspace = self.root / "workspace"
        self.workspace.mkdir(parents=True)
        self.alt = self.root / "alt.json"
        self.alt.write_text(json.dumps(self.document.doc))
        self.environ = {**environ, "RUNNER_MAX_CONCURRENT_TASKS": str(rng.choice([1, 2, 4, 8]))}
        self.kill_probability = kill_probability
        self.max_kills = max_kills
        self.cycles: list[Cycle] = []
        self.problems: list[str] = []
        self.say = say

    @property
    def log(self) -> Path:
        return self.workspace / LOG

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def lines(self) -> int:
        try:
            return self.log.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def head(self) -> Path | None:
        """The newest run directory with a journal: what the next cycle resumes."""
        for cycle in reversed(self.cycles):
            if cycle.directory is not None:
                return cycle.directory
        return None

    def new_journal(self, before: set) -> bool:
        return self.out.exists() and any(has_journal(d) for d in set(self.out.iterdir()) - before)

    def run(self) -> bool:
        """Cycles until one ends by itself with the run complete. True when it did."""
        kills = 0
        while True:
            head = self.head()
            if head is None:
                argv = ["run", str(self.alt), "--out", str(self.out), "--workspace", str(self.workspace), "--quiet"]
                durable = set()
            else:
                argv = ["resume", str(head), "--quiet"]
                # Completed in any journal of the chain so far: a resume records what it reuses
                # before any task runs, so none of it is lost by the next kill.
                durable = set().union(*(c.completed for c in self.cycles))
            cycle = Cycle(len(self.cycles), argv, head, durable)
            self.cycles.append(cycle)
            # The first cycle is always killed: a scenario without a kill tests nothing.
            kill = kills < self.max_kills and (not self.cycles[:-1] or self.rng.random() < self.kill_probability)
            self.one(cycle, kill)
            if cycle.signal is None:
                return self.ended(cycle)
            kills += 1
            if len(self.cycles) > self.max_kills + 10:
                self.problems.append(f"still not done after {len(self.cycles)} cycles")
                return False

    def one(self, cycle: Cycle, kill: bool) -> None:
        before = set(self.out.iterdir()) if self.out.exists() else set()
        cycle.log_start = self.log_size()
        lines_at_start = self.lines()
        stderr_path = self.root / f"cycle{cycle.number}.stderr"
        with open(stderr_path, "wb") as stderr:
            child = subprocess.Popen([sys.executable, "-m", "runner", *cycle.argv], stdout=subprocess.DEVNULL,
                                     stderr=stderr, env=self.environ, cwd=self.root)
            cycle.start_ticks = process_start_ticks(child.pid)
            plan = "none"
            if kill:
                how = self.rng.random()
                chosen = self.rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM])
                if how < 0.2:
                    # As soon as its journal exists (its first lines are on disk): what a
                    # resume records before any task runs must be there.
                    plan = "once its journal exists"
                    deadline = time.monotonic() + 120
                    while child.poll() is None and not self.new_journal(before) and time.monotonic() < deadline:
                        time.sleep(0.001)
                    landed = child.poll() is None
                elif how < 0.45:
                    # A random moment after the start: the journal's first lines, the plan,
                    # the wait for an earlier run's commands, the first tasks.
                    landed = False
                    plan = "after a delay"
                    try:
                        child.wait(self.rng.uniform(0.0, 0.4))
                    except subprocess.TimeoutExpired:
                        landed = True
                else:
                    # Once N more effects are in the log, then a random instant more.
                    more = self.rng.randint(1, max(1, len(self.document.effects) // 2))
                    plan = f"after {more} more lines"
                    wanted = lines_at_start + more
                    deadline = time.monotonic() + 120
                    while child.poll() is None and self.lines() < wanted and time.monotonic() < deadline:
                        time.sleep(0.002)
                    landed = child.poll() is None
                    if landed and self.rng.random() < 0.5:
                        time.sleep(self.rng.uniform(0.0, 0.03))
                        landed = child.poll() is None
                if landed:
                    cycle.killed_at = time.time()
                    child.send_signal(chosen)
                    cycle.signal = chosen
            try:
                cycle.returncode = child.wait(300)
            except subprocess.TimeoutExpired:
                child.kill()
                cycle.returncode = child.wait()
                self.problems.append(f"cycle {cycle.number} ({' '.join(cycle.argv[:1])}) did not end in 300 s")
        cycle.log_end = self.log_size()
        cycle.stderr = stderr_path.read_text(errors="replace")
        made = [d for d in set(self.out.iterdir()) - before if d.is_dir()] if self.out.exists() else []
        for directory in made:
            if has_journal(directory):
                cycle.directory = directory
                cycle.completed, cycle.journaled_groups, _ = completed_in(directory)
        signal_name = signal.Signals(cycle.signal).name if cycle.signal else "-"
        self.say(f"  s{self.number} cycle {cycle.number}: {cycle.argv[0]:<6} {signal_name:<7} exit {cycle.returncode:>4} "
                 f"completed {len(cycle.completed):>3}  log {self.lines()} lines  (kill: {plan})")
        time.sleep(0.02)        # the next cycle's commands start in a later clock tick

    def ended(self, cycle: Cycle) -> bool:
        if cycle.returncode != 0:
            self.problems.append(f"cycle {cycle.number} ({cycle.argv[0]}) ended by itself with exit "
                                 f"{cycle.returncode}: {cycle.stderr[-2000:]}")
            return False
        return True

    # ---- the checks ---------------------------------------------------------------------

    def attribute(self, effects: list[Effect]) -> None:
        """Which cycle did each effect: a file append, by its place in the log (only a live
        runner appends); a command, by its start (after its cycle's process started, and
        before the next one's: each process is gone before the next starts)."""
        for effect in effects:
            if effect.kind == "file":
                for cycle in self.cycles:
                    if cycle.log_start <= effect.offset < cycle.log_end:
                        effect.cycle = cycle.number
            else:
                for cycle in self.cycles:
                    if cycle.start_ticks <= effect.start_ticks:
                        effect.cycle = cycle.number

    def check(self) -> dict:
        effects = read_log(self.log)
        self.attribute(effects)
        by_token: dict[str, list[Effect]] = {}
        for effect in effects:
            by_token.setdefault(effect.token, []).append(effect)
        expected = self.document.effects
        for token in sorted(set(by_token) - set(expected)):
            self.problems.append(f"an effect no task has: {token}")
        for token in sorted(set(expected) - set(by_token)):
            self.problems.append(f"{token} ({expected[token]}) never happened")
        final = self.head()     # a resume with nothing to do writes no directory
        if final is not None and (final / "last.json").is_file():
            record = json.loads((final / "last.json").read_bytes())
            bad = {k: r["status"] for k, r in record["task_results"].items() if r["status"] != "completed"}
            if bad:
                self.problems.append(f"the last run's LAST file has tasks not completed: {bad}")
        elif not self.problems:
            self.problems.append("the last cycle wrote no LAST file")
        duplicates_per_kill: dict[int, int] = {}
        duplicates = 0
        window = {"effect before the kill": 0, "effect after the kill (a command not stopped yet)": 0}
        for token, seen in by_token.items():
            task_id = expected.get(token, token)
            cycles = [e.cycle for e in seen]
            for effect in seen:
                cycle = self.cycles[effect.cycle] if effect.cycle >= 0 else None
                if cycle is None:
                    self.problems.append(f"{token}: an effect at log offset {effect.offset} no cycle made")
                    continue
                if task_id in cycle.durable_before:
                    self.problems.append(
                        f"{token}: cycle {cycle.number} ({cycle.argv[0]} {cycle.resumed}) did it again although "
                        f"an earlier journal of the run holds {task_id} completed")
                if cycle.directory is None:
                    self.problems.append(f"{token}: cycle {cycle.number} did it before any journal existed")
            for number in sorted(set(cycles)):
                if cycles.count(number) > 1:
                    self.problems.append(f"{token}: done {cycles.count(number)} times by cycle {number}")
            if len(seen) > 1:
                # Each repetition must follow a killed cycle that did (or had under way) the
                # effect without its completed result reaching that cycle's journal.
                for effect in seen[:-1]:
                    cycle = self.cycles[effect.cycle] if effect.cycle >= 0 else None
                    if cycle is None:
                        continue
                    if cycle.signal is None:
                        self.problems.append(f"{token}: repeated after cycle {cycle.number}, which was not killed")
                    elif task_id in cycle.completed:
                        self.problems.append(f"{token}: repeated although cycle {cycle.number}'s journal holds "
                                             f"{task_id} completed")
                    else:
                        duplicates += 1
                        duplicates_per_kill[cycle.number] = duplicates_per_kill.get(cycle.number, 0) + 1
                        late = effect.kind == "cmd" and effect.appended > cycle.killed_at
                        window["effect after the kill (a command not stopped yet)" if late else "effect before the kill"] += 1
        return {"duplicates": duplicates, "per_kill": duplicates_per_kill, "window": window,
                "kills": sum(1 for c in self.cycles if c.signal is not None), "cycles": len(self.cycles),
                "effects": len(expected), "lines": len(effects)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="run scenarios until this much time passed")
    parser.add_argument("--scenarios", type=int, default=None, help="run this many scenarios (default 1 without --seconds)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=8, help="at most this many kills per scenario")
    parser.add_argument("--kill-probability", type=float, default=0.85)
    parser.add_argument("--no-control-flow", action="store_true", help="flat documents only")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory, removed when all is well)")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per cycle")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="runner-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": PYTHON,
               "RUNNER_GRACE_SECONDS": "0.3", "RUNNER_RESUME_WAIT_SECONDS": "20", "TMPDIR": str(root)}
    environ.pop("RUNNER_AI_SERVICE_URL", None)
    say = print if args.verbose else (lambda *a: None)
    started = time.monotonic()
    total = {"scenarios": 0, "cycles": 0, "kills": 0, "effects": 0, "lines": 0, "duplicates": 0, "max_per_kill": 0}
    window = {}
    kinds = {}
    failed = []
    count = args.scenarios if args.scenarios is not None else (None if args.seconds else 1)
    number = 0
    while (count is None or number < count) and (args.seconds is None or time.monotonic() - started < args.seconds):
        scenario = Scenario(number, random.Random(rng.getrandbits(64)), root, environ, not args.no_control_flow,
                            args.kill_probability, args.kills, say)
        kinds[scenario.document.name] = kinds.get(scenario.document.name, 0) + 1
        scenario.run()
        found = scenario.check()
        total["scenarios"] += 1
        for key in ("cycles", "kills", "effects", "lines", "duplicates"):
            total[key] += found[key]
        total["max_per_kill"] = max([total["max_per_kill"], *found["per_kill"].values()])
        for key, value in found["window"].items():
            window[key] = window.get(key, 0) + value
        if scenario.problems:
            failed.append((scenario, scenario.problems))
            print(f"scenario {number} ({scenario.document.name}, {scenario.root}): FAILED")
            for problem in scenario.problems:
                print(f"  {problem}")
        elif args.verbose:
            print(f"scenario {number} ({scenario.document.name}): ok, {found['cycles']} cycles, {found['kills']} kills, "
                  f"{found['duplicates']} duplicates {found['per_kill']}")
        number += 1
    elapsed = time.monotonic() - started
    print(f"soak (seed {args.seed}, {elapsed:.0f} s, load {os.getloadavg()[0]:.1f}): {total['scenarios']} scenarios "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), {total['cycles']} cycles, "
          f"{total['kills']} kills, {total['effects']} effects ({total['lines']} lines in the logs)")
    print(f"duplicates: {total['duplicates']} in all, {total['duplicates'] / max(1, total['kills']):.2f} per kill, "
          f"at most {total['max_per_kill']} after one kill; "
          + ", ".join(f"{k}: {v}" for k, v in window.items()))
    if failed:
        print(f"FAILED: {len(failed)} scenario(s) found duplicates outside the window or lost effects (kept in {root})")
        return 1
    print("ok: every effect happened once, but for duplicates inside the window after a kill")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
