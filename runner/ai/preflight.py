"""Before a run spends anything on its AI tasks: is the AI service there, with every model they use?

The run path (runner.execution.execute) calls `check_ai_service` once, before the first
task starts. A server that is down, a model it does not serve, or a task with no model
at all becomes one clear error (a ConfigurationError: exit 2 from the CLI, NULL and the
message from the C ABI) instead of one failure per task. Only providers whose protocol
can say whether it is ready are asked (kserve: ServerReady, ModelReady, ModelMetadata);
for the HTTP providers this returns at once and their configuration errors stay with the
tasks, as before.
"""
from __future__ import annotations

import os

from runner.ai.client import AIClient
from runner.ai.settings import settings_from_environment
from runner.ai.errors import AIServiceError
from runner.ai.selection import model_for
from runner.errors import ConfigurationError, ParameterError

PROVIDERS_WITH_READINESS = ("kserve",)


def models_of(alt, client: AIClient) -> dict[str, str]:
    """model -> the first AI task that uses it, chosen as the tasks will choose (the task,
    the persona, the ALT file, then the client's RUNNER_AI_MODEL); ConfigurationError naming a task
    left without a model. A task whose own model setting is unusable is left to fail by itself."""
    models: dict[str, str] = {}
    for task in alt.tasks:
        if task.task_type != "ai_prompt":
            continue
        try:
            model = model_for(task.parameters, alt.metadata or {}, alt.persona, environ={}) or client.default_model
        except ParameterError:
            continue
        if model is None:
            raise ConfigurationError(f"task {task.id!r}: AI provider {client.provider!r} has no default model: name one "
                             "(the task's parameters.model, the ALT file's metadata.model or "
                             "metadata.persona_models, or RUNNER_AI_MODEL)")
        models.setdefault(model, task.id)
    return models


def check_ai_service(alt, client: AIClient | None = None, environ=os.environ) -> AIClient | None:
    """Checks, once, that the service and each model the ALT file's AI tasks use are ready.

    `client` is the run's client, if the caller has one; else one is made from `environ`
    when its provider can be asked, and returned for the run to use (and close). Raises
    ConfigurationError with the one message the run fails with.
    """
    if not any(task.task_type == "ai_prompt" for task in alt.tasks):
        return None
    made = None
    if client is None:
        try:
            config = settings_from_environment(environ)
        except ConfigurationError:
            return None     # each AI task reports it, as it always did
        if config.provider not in PROVIDERS_WITH_READINESS:
            return None
        client = made = AIClient(config)        # ConfigurationError (grpcio missing, CA file unreadable) goes up
    elif client.provider not in PROVIDERS_WITH_READINESS:
        return None
    try:
        models = models_of(alt, client)
        client.check_ready(models, timeout=client.config.connect_timeout)
    except AIServiceError as error:
        if made is not None:
            made.close()
        raise ConfigurationError(f"AI service check: {error}") from None
    except BaseException:
        if made is not None:
            made.close()
        raise
    return made
