"""Making a run ready before its clock starts: what its task types need, once, up front.

A task's duration_ms should be its own work. Left to the first task that needs it, the
AI client's start-up (importing requests and building a session: 50-400 ms), loading
the template engine and a handler's module, and compiling a prompt template all landed
inside one task's recorded time and skewed its timings, the critical path and the
report. prepare() does them before the run's first start stamp and records how long
each took; the run's execution facts carry that record as `preparation`.

This is the one place for work that must happen after the ALT file is known and before
any task runs. A failure here is kept and given to the tasks it concerns when they run
(an AI configuration error fails each AI task, as it would have), so preparing changes
when work happens, not what a run reports.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from runner.errors import ConfigurationError
from runner.execution.task_types import handler_for

# Distinct prompt templates compiled before the run. A file with more compiles the rest
# in their own tasks: compiled templates are kept for the whole run, so their number is
# bounded to keep memory small on files of 100k templated tasks.
MAX_PREPARED_TEMPLATES = 256


@dataclass
class Preparation:
    """What prepare() made ready for one run, and how long each part took (ms)."""

    ai_client: object | None = None         # runner.ai.AIClient, when the run has AI tasks
    ai_client_error: str | None = None      # why it could not be made (a RUNNER_AI_* value)
    prompt_templates: dict = field(default_factory=dict)   # template text -> compiled, or its TemplateFailure
    durations_ms: dict = field(default_factory=dict)       # part -> milliseconds
    # (name, PATH) -> (path, refusal) of the run's system_command executables, found by
    # their first attempt (runner.execution.system_command)
    executables: dict = field(default_factory=dict)

    def compiled_prompt(self, text: str):
        """The template compiled for `text`, None when it was not prepared; raises its
        TemplateFailure when compiling it failed."""
        compiled = self.prompt_templates.get(text)
        if isinstance(compiled, Exception):
            raise type(compiled)(str(compiled))
        return compiled

    def facts(self) -> dict:
        """The execution facts' `preparation`: the total and each part, in ms."""
        return {"duration_ms": sum(self.durations_ms.values()), **{f"{part}_ms": ms for part, ms in
                                                                   self.durations_ms.items()}}


def _prompt_text(task):
    return task.parameters.get("prompt", task.description)


def prepare(tasks, *, types=None, environ=None, ai_client=None, load_type=handler_for) -> Preparation:
    """Loads the handlers of the task types in `tasks` (load_type(name), default from the
    process's registry: a plugin's module is imported here, not in its first task), makes the AI client (unless one is
    given) when any task is an AI prompt, and compiles their prompt templates. types: the
    task types of `tasks` when the caller knows them already."""
    preparation = Preparation(ai_client=ai_client)
    clock = time.perf_counter
    started = clock()
    task_types = {task.task_type for task in tasks} if types is None else types
    for task_type in task_types:
        try:
            load_type(task_type)
        except Exception:       # its tasks fail with the reason when they run
            pass
    preparation.durations_ms["handlers"] = (clock() - started) * 1000.0
    if "ai_prompt" not in task_types:
        return preparation
    if ai_client is None:
        started = clock()
        from runner.ai import client_from_environment
        try:
            preparation.ai_client = client_from_environment(*(() if environ is None else (environ,)))
        except ConfigurationError as error:
            preparation.ai_client_error = str(error)
        preparation.durations_ms["ai_client"] = (clock() - started) * 1000.0
    started = clock()
    templated = []
    for task in tasks:
        if task.task_type == "ai_prompt":
            text = _prompt_text(task)
            if isinstance(text, str) and "{" in text and text not in preparation.prompt_templates:
                if len(templated) == MAX_PREPARED_TEMPLATES:
                    break
                templated.append(text)
                preparation.prompt_templates[text] = None
    if templated:
        from runner.execution.prompt_templates import TemplateFailure, compile_prompt
        for text in templated:
            try:
                preparation.prompt_templates[text] = compile_prompt(text)
            except TemplateFailure as failure:
                preparation.prompt_templates[text] = failure
        preparation.durations_ms["templates"] = (clock() - started) * 1000.0
    return preparation
