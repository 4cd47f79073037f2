"""Which model a task asks for: the task, then the ALT file, then the environment.

The provider's default comes last and is the client's business (`model_for` returns
None then), because only the client knows its provider.
"""
from __future__ import annotations

import os

from runner.errors import ParameterError


def _model_name(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(f"{where}: expected a non-empty model name (string), found {value!r}")
    return value.strip()


def model_for(task_parameters: dict | None, alt_metadata: dict | None, persona: str | None,
              environ=os.environ) -> str | None:
    """The model for one task, or None for the provider's default.

    Order: the task's parameters.model; the ALT file's metadata.persona_models[persona];
    its metadata.model; RUNNER_AI_MODEL. A value of the wrong type is a ParameterError naming
    where it was found, not silently skipped: the ALT file asked for something.
    """
    parameters = task_parameters or {}
    metadata = alt_metadata or {}
    model = _model_name(parameters.get("model"), "parameters.model")
    if model:
        return model
    if persona is not None and "persona_models" in metadata:
        mapping = metadata["persona_models"]
        if not isinstance(mapping, dict):
            raise ParameterError(f"metadata.persona_models: expected an object mapping persona to model, found {type(mapping).__name__}")
        model = _model_name(mapping.get(persona), f"metadata.persona_models.{persona}")
        if model:
            return model
    model = _model_name(metadata.get("model"), "metadata.model")
    if model:
        return model
    return environ.get("RUNNER_AI_MODEL", "").strip() or None
