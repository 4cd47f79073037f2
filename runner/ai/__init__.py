"""AI service integration: one client for OpenAI-compatible, Anthropic, KServe v2 (gRPC) and offline `echo` answers.

    client = client_from_environment()          # RUNNER_AI_*; echo without RUNNER_AI_SERVICE_URL
    answer = client.complete("Summarise ...", model=model_for(task.parameters, alt.metadata, persona))

`complete` makes ONE attempt; the executor retries on AIServiceError.retryable, waiting
at least .retry_after. One client is meant to be shared by all tasks of a run or batch.
"""
from __future__ import annotations

import os

from runner import settings as runner_settings     # not runner.ai.settings, the AI service's
from runner.ai.client import AIClient, sent_sampling
from runner.ai.completion import Completion
from runner.ai.settings import DEFAULT_MODELS, PROVIDERS, VARIABLES, AISettings, settings_from_environment
from runner.ai.errors import AIServiceError, retry_after_seconds
from runner.ai.selection import model_for
from runner.errors import ConfigurationError

__all__ = [
    "AIClient", "AISettings", "AIServiceError", "Completion", "DEFAULT_MODELS", "PROVIDERS", "VARIABLES",
    "check_record_path", "client_from_environment", "settings_from_environment", "model_for", "recording",
    "replay_client", "replaying",
    "retry_after_seconds", "sent_sampling",
]


def client_from_environment(environ=os.environ) -> AIClient:
    """A client configured by the RUNNER_AI_* variables (ConfigurationError naming a bad one).

    RUNNER_AI_REPLAY replaces it by one that answers from a cassette without any connection;
    RUNNER_AI_RECORD wraps it to record its calls in one (runner.ai.cassette).
    """
    config = settings_from_environment(environ)
    if replaying(environ):
        return replay_client(config, environ)
    return recording(AIClient(config), environ)


def replay_client(config: AISettings, environ=os.environ):
    """The client answering from RUNNER_AI_REPLAY's cassette, loaded and checked line by line
    (ConfigurationError naming the file and line)."""
    from runner.ai.cassette import ReplayClient
    return ReplayClient(runner_settings.text("RUNNER_AI_REPLAY", environ), provider=config.provider,
                        default_model=config.default_model,
                        speed=runner_settings.text("RUNNER_AI_REPLAY_SPEED", environ) or "instant")


def replaying(environ=os.environ) -> bool:
    """RUNNER_AI_REPLAY is set: AI calls are answered from a cassette (and nothing connects)."""
    replay = runner_settings.text("RUNNER_AI_REPLAY", environ)
    if replay and runner_settings.text("RUNNER_AI_RECORD", environ):
        raise ConfigurationError("RUNNER_AI_RECORD and RUNNER_AI_REPLAY are both set: a run records or replays, not both")
    return bool(replay)


def recording(client, environ=os.environ):
    """`client`, wrapped to record its calls when RUNNER_AI_RECORD names a cassette."""
    record = runner_settings.text("RUNNER_AI_RECORD", environ)
    if not record:
        return client
    from runner.ai.cassette import RecordingClient
    try:
        return RecordingClient(client, record, api_key=client.config.api_key)
    except OSError as error:
        client.close()
        raise ConfigurationError(f"RUNNER_AI_RECORD={record}: cannot open: {error.strerror or error}") from None


def check_record_path(environ=os.environ) -> None:
    """ConfigurationError when RUNNER_AI_RECORD names a cassette that cannot be opened for appending,
    so a run refuses it before any task rather than failing every AI task."""
    record = runner_settings.text("RUNNER_AI_RECORD", environ)
    if record:
        try:
            open(record, "ab").close()
        except OSError as error:
            raise ConfigurationError(f"RUNNER_AI_RECORD={record}: cannot open: {error.strerror or error}") from None


# The names before settings and options got one word each (issue 24): still importable, with a
# DeprecationWarning, so code written against them keeps working for a release.
_RENAMED = {"AIConfig": "AISettings", "config_from_environment": "settings_from_environment"}


def __getattr__(name: str):
    if name in _RENAMED:
        import warnings

        warnings.warn(f"runner.ai.{name} is runner.ai.{_RENAMED[name]} now", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'runner.ai' has no attribute {name!r}")
