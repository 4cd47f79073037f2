"""AI service integration: one client for OpenAI-compatible, Anthropic, KServe v2 (gRPC) and offline `echo` answers.

    client = client_from_environment()          # RUNNER_AI_*; echo without RUNNER_AI_SERVICE_URL
    answer = client.complete("Summarise ...", model=model_for(task.parameters, alt.metadata, persona))

`complete` makes ONE attempt; the executor retries on AIServiceError.retryable, waiting
at least .retry_after. One client is meant to be shared by all tasks of a run or batch.
"""
from __future__ import annotations

import os

from runner.ai.client import AIClient, sent_sampling
from runner.ai.completion import Completion
from runner.ai.config import DEFAULT_MODELS, PROVIDERS, VARIABLES, AIConfig, config_from_environment
from runner.ai.errors import AIServiceError, retry_after_seconds
from runner.ai.selection import model_for

__all__ = [
    "AIClient", "AIConfig", "AIServiceError", "Completion", "DEFAULT_MODELS", "PROVIDERS", "VARIABLES",
    "client_from_environment", "config_from_environment", "model_for", "retry_after_seconds", "sent_sampling",
]


def client_from_environment(environ=os.environ) -> AIClient:
    """A client configured by the RUNNER_AI_* variables (ValueError naming a bad one).

    RUNNER_AI_RECORD / RUNNER_AI_REPLAY wrap it to record its calls in a cassette, or
    replace it by one that answers from a cassette without any connection (runner.ai.cassette).
    """
    from runner import settings

    config = config_from_environment(environ)
    record = settings.text("RUNNER_AI_RECORD", environ)
    replay = settings.text("RUNNER_AI_REPLAY", environ)
    if record and replay:
        raise ValueError("RUNNER_AI_RECORD and RUNNER_AI_REPLAY are both set: a run records or replays, not both")
    if replay:
        from runner.ai.cassette import ReplayClient
        return ReplayClient(replay, provider=config.provider, default_model=config.default_model,
                            speed=settings.text("RUNNER_AI_REPLAY_SPEED", environ) or "instant")
    client = AIClient(config)
    if record:
        from runner.ai.cassette import RecordingClient
        try:
            return RecordingClient(client, record, api_key=config.api_key)
        except OSError as error:
            client.close()
            raise ValueError(f"RUNNER_AI_RECORD={record}: cannot open: {error.strerror or error}") from None
    return client
