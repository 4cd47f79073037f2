"""Cache keys of tasks: what decides whether a result of an earlier run still stands.

A task's key hashes the canonical JSON of the task as it is executed: its type and
parameters, and for an AI task the prompt actually sent (the template rendered over its
dependencies' results), the model and the sampling the mode gives it; then the run's
mode and the keys of its dependencies. Timeouts, retries, priorities and descriptions
that are not sent do not change what a task produces, so they are not in it.
"""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

import orjson

from runner.errors import ParameterError
from runner.execution.task_types import BUILT_IN_MODULES, code_facts

AI_TYPE = "ai_prompt"


def executed_form(task, alt, mode: str, dependencies: dict, ai: dict, code: dict | None = None) -> dict:
    """The task as it is executed. dependencies: id -> {status, output, error} (as handlers
    see them); ai: the run's AI service, {"provider", "model"}; code: the user's task types
    as the run saw them (task_types.code_facts, recorded in its journal), None for now."""
    form = {"type": task.task_type, "parameters": task.parameters, "mode": mode}
    if task.task_type == AI_TYPE:
        form.update(_ai_form(task, alt, mode, dependencies, ai or {}))
    elif task.task_type not in BUILT_IN_MODULES:
        # The code that handles a user's type is part of what its tasks produce: its
        # function's qualified name and version (a plugin's distribution's) are in the key,
        # so a new version re-runs them on resume.
        if code is None:
            code = code_facts([task.task_type])
        facts = code.get(task.task_type) or {}
        form.update(handler=facts.get("handler"), version=facts.get("version"))
    return form


def _ai_form(task, alt, mode: str, dependencies: dict, ai: dict) -> dict:
    from runner.ai.selection import model_for
    from runner.execution import modes
    from runner.execution.ai_prompt import prompt_of
    from runner.execution.attempt import Cancellation, TaskFailure

    out = {}
    ctx = SimpleNamespace(parameters=task.parameters, task=task, alt=alt, mode=mode,
                          dependencies=dependencies, cancellation=Cancellation())
    try:
        out["prompt"] = prompt_of(ctx)
    except TaskFailure as error:
        out["prompt_error"] = str(error)
    provider = ai.get("provider")
    try:
        # RUNNER_AI_MODEL is in ai["model"] (the run's default model), as the run saw it.
        out["model"] = model_for(task.parameters, alt.metadata or {}, alt.persona, environ={}) or ai.get("model")
    except ParameterError as error:
        out["model_error"] = str(error)
    try:
        if mode == "explore":
            out["sampling"] = [modes.sampling_for("explore", task.parameters, k, provider=provider)
                               for k in range(modes.explore_samples(task.parameters))]
        else:
            out["sampling"] = modes.sampling_for(mode, task.parameters, provider=provider)
    except ParameterError as error:
        out["sampling_error"] = str(error)
    out["provider"] = provider
    return out


def task_key(form: dict, dependency_keys: list) -> str:
    """The hash of the executed form and the dependencies' keys (in dependency order)."""
    canonical = orjson.dumps({"task": form, "dependencies": dependency_keys},
                             option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def what_changed(old: dict, new: dict) -> str:
    """The reason a key changed, as `resume --dry-run` says it: 'prompt changed', ..."""
    for field, words in (("type", "type changed"), ("handler", "handler changed"),
                         ("version", "handler's version changed"), ("mode", "mode changed"), ("prompt", "prompt changed"),
                         ("model", "model changed"), ("provider", "AI provider changed"),
                         ("sampling", "sampling changed"), ("parameters", "parameters changed")):
        if old.get(field) != new.get(field):
            return words
    return "definition changed"
