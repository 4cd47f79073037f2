"""Preflight: what must hold before the first task of a run starts, checked once, up front.

A mistake found here costs nothing: no task has run, no AI call has been paid for. Found
later, the same mistake fails every task one by one, or loses a whole run's results at
the end (an output "directory" that is a file). `run` and runner_execute_alt_file call
check() before they start; a failure is one PreflightError listing every problem, and
the CLI exits 2.

Each check is a function of a Preflight (the ALT file, the output directory, the
environment) returning the problems it found. Checks that need a service (an inference
server's readiness, a client warm-up) are added to CHECKS the same way.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from runner import extras, settings as runner_settings
from runner.errors import ConfigurationError, PreflightError


@dataclass
class Preflight:
    """What the checks look at."""
    alt: object                         # the AltFile about to run
    output_dir: Path                    # where its LAST directory will be written
    environ: object = field(default_factory=lambda: os.environ)

    def tasks_of_type(self, *kinds: str) -> list:
        return [task for task in self.alt.tasks if task.task_type in kinds]


def output_directory(preflight: Preflight) -> list[str]:
    """The output directory exists and a file can be written in it, or it can be created:
    its nearest existing ancestor is a directory we may write in. Nothing is created here
    (a run refused by a later check leaves no directory behind)."""
    target = preflight.output_dir
    if target.exists():
        if not target.is_dir():
            return [f"output directory '{target}' is not a directory"]
        try:
            with tempfile.NamedTemporaryFile(dir=target, prefix=".preflight-"):
                pass
        except OSError as error:
            return [f"output directory '{target}' is not writable: {error.strerror or error}"]
        return []
    ancestor = target.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [f"output directory '{target}' cannot be created: '{ancestor}' is not a directory"]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [f"output directory '{target}' cannot be created: '{ancestor}' is not writable"]
    return []


def ai_configuration(preflight: Preflight) -> list[str]:
    """The RUNNER_AI_* variables make a usable client: provider, URL form, key form."""
    if not preflight.tasks_of_type("ai_prompt"):
        return []
    from runner.ai.settings import settings_from_environment

    try:
        config = settings_from_environment(preflight.environ)
    except ConfigurationError as error:
        return [f"AI configuration: {error}"]
    found = []
    if config.api_key is not None and any(c.isspace() for c in config.api_key.strip()):
        position = next(i for i, c in enumerate(config.api_key.strip(), 1) if c.isspace())
        found.append(f"AI configuration: RUNNER_AI_API_KEY contains a blank at position {position} "
                     f"(an API key has none: was it pasted with other text?)")
    if config.base_url:
        parts = urlsplit(config.base_url)
        try:
            host, _ = parts.hostname, parts.port       # .port raises on a port that is not a number
        except ValueError as error:
            found.append(f"AI configuration: RUNNER_AI_SERVICE_URL: {error}")
        else:
            if not host:
                found.append(f"AI configuration: RUNNER_AI_SERVICE_URL {parts.scheme}://{parts.path!r} names no "
                             f"host (expected e.g. http://127.0.0.1:8000/v1)")
    return found


def system_commands(preflight: Preflight) -> list[str]:
    """A file with system_command tasks needs them enabled, and its programs allowed."""
    tasks = preflight.tasks_of_type("system_command")
    if not tasks:
        return []
    from runner.execution import settings as execution_settings
    from runner.execution.system_command import allowed

    try:
        settings = execution_settings.load(preflight.environ)
    except ConfigurationError as error:
        return [str(error)]
    ids = ", ".join(task.id for task in tasks[:5]) + (", ..." if len(tasks) > 5 else "")
    problems = []
    if not settings.system_commands_enabled:
        problems.append(f"the file has {len(tasks)} system_command task{'s' if len(tasks) != 1 else ''} ({ids}) "
                        "but system commands are disabled (set RUNNER_ENABLE_SYSTEM_COMMANDS=true to enable them)")
    # The allowlist is checked even while commands are disabled: enabling them must not
    # reveal the next problem only at the next attempt.
    found: dict = {}        # name -> its problem or None, each name looked up once
    for task in tasks:
        name = task.parameters["command"][0]
        if name not in found:
            found[name] = allowed(name, settings.command_allowlist)[1]
        if found[name] is not None:
            problems.append(f"task '{task.id}': {found[name]}")
    return problems


def optional_packages(preflight: Preflight) -> list[str]:
    """The packages of the features the run is configured to use (runner/extras.py): a missing
    one is a configuration mistake found now, not a failure at every task or delivery."""
    wanted = []
    if runner_settings.text("RUNNER_NATS_URL", preflight.environ) is not None:
        wanted.append(("nats", "RUNNER_NATS_URL"))
    # The kserve provider without grpcio is refused as the AI service is checked (exit 2,
    # naming the [grpc] extra) before any task: runner.ai.client.
    if runner_settings.text("RUNNER_DASK_SCHEDULER", preflight.environ) is not None:
        wanted.append(("dask", "RUNNER_DASK_SCHEDULER"))
    return [found for found in (extras.problem(extra, feature) for extra, feature in wanted) if found]


CHECKS: list[Callable[[Preflight], list[str]]] = [output_directory, ai_configuration, system_commands,
                                                  optional_packages]


def problems(alt, output_dir=None, environ=os.environ) -> list[str]:
    """Every problem the checks find (empty: the run may start)."""
    preflight = Preflight(alt, runner_settings.output_dir(output_dir, environ), environ)
    found: list[str] = []
    for check in CHECKS:
        found.extend(check(preflight))
    return found


def check(alt, output_dir=None, environ=os.environ) -> None:
    """Raises PreflightError (a ConfigurationError) naming every problem; nothing has run."""
    found = problems(alt, output_dir, environ)
    if found:
        error = PreflightError(("cannot start the run: " if len(found) == 1 else
                                f"cannot start the run ({len(found)} problems): ") + "; ".join(found))
        error.problems = found
        raise error
