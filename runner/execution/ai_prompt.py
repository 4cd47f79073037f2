"""ai_prompt: one call to the AI service (N calls in explore mode) with a templated prompt.

The prompt is parameters.prompt, else the task's description, rendered by the sandboxed
template environment with `deps` (dependency id -> {status, output, error}), `task` and
`alt`. The executor owns retries: an AIServiceError becomes a TaskFailure that is
permanent unless the error is retryable, carrying the server's retry_after. The call
gets the attempt's cancel event and remaining time, so a timeout aborts the HTTP request.
"""
from __future__ import annotations

from runner.execution import modes
from runner.errors import ConfigurationError, ParameterError
from runner.execution.attempt import AttemptTimeout, TaskFailure
from runner.trace.ids import outgoing

DEADLINE_MARGIN_SECONDS = 0.5


def prompt_of(ctx) -> str:
    template = ctx.parameters.get("prompt", ctx.task.description)
    if not isinstance(template, str):
        raise TaskFailure(f"parameters.prompt must be a string, found {type(template).__name__}", permanent=True)
    if "{" not in template:       # a plain prompt: no template engine to load
        return template
    from runner.execution.prompt_templates import TemplateFailure, render_prompt

    context = {
        "deps": ctx.dependencies,
        "task": {"id": ctx.task.id, "description": ctx.task.description, "parameters": ctx.parameters},
        "alt": {"id": ctx.alt.id, "title": ctx.alt.title, "mode": ctx.mode},
    }
    try:
        preparation = getattr(ctx, "preparation", None)      # None: resume's task keys, tests
        compiled = preparation.compiled_prompt(template) if preparation is not None else None
        return render_prompt(template, context, ctx.cancellation, compiled)
    except TemplateFailure as error:
        raise TaskFailure(str(error), permanent=True) from None


def _call(ctx, client, prompt: str, model, sampling: dict, stream: bool, index: int = 0,
          sample: int | None = None):
    from runner.ai import AIServiceError

    on_text = ctx.on_text if stream else None
    trace = getattr(ctx, "trace", None)
    # A traced run: the call carries its span's traceparent to the AI service (the transports
    # read it on this thread), the id runner.trace.spans gives the call's span.
    joined = outgoing.set(trace.traceparent(trace.ai_span_id(ctx.task.id, ctx.number, index))) \
        if trace is not None else None
    if on_text is not None and sample is not None:
        # Explore mode's samples each stream their own answer: told apart, not run together.
        on_text = (lambda text, sink=on_text: sink(text, sample=sample))
    try:
        # A little beyond the attempt's deadline: the executor's own clock ends the attempt
        # (and sets cancel, which aborts the request); the client's deadline is a backstop.
        return client.complete(prompt, model=model, sampling=sampling, stream=stream, on_text=on_text,
                               cancel=ctx.cancel, timeout=ctx.remaining() + DEADLINE_MARGIN_SECONDS)
    except AIServiceError as error:
        if error.kind == "deadline":
            raise AttemptTimeout(f"AI service: {error}") from None
        if error.kind == "replay":
            raise TaskFailure(f"task {ctx.task.id}: {error}", permanent=True) from None
        raise TaskFailure(f"AI service: {error}", permanent=not error.retryable,
                          retry_after=error.retry_after) from None
    finally:
        if joined is not None:
            outgoing.reset(joined)


def run(ctx) -> dict:
    from runner.ai import model_for

    prompt = prompt_of(ctx)
    try:
        client = ctx.client()
    except ConfigurationError as error:     # a RUNNER_AI_* variable with an unusable value
        raise TaskFailure(f"AI configuration: {error}", permanent=True) from None
    try:
        model = model_for(ctx.parameters, ctx.alt.metadata or {}, ctx.alt.persona)
    except ParameterError as error:
        raise TaskFailure(f"model selection: {error}", permanent=True) from None
    stream = bool(ctx.parameters.get("stream", ctx.stream))
    if ctx.mode == "explore":
        try:
            samples = modes.explore_samples(ctx.parameters)
        except ParameterError as error:
            raise TaskFailure(str(error), permanent=True) from None
        completions, samplings = [], []
        for sample in range(samples):
            sampling = modes.sampling_for("explore", ctx.parameters, sample, provider=client.provider)
            completions.append(_call(ctx, client, prompt, model, sampling, stream, sample, sample + 1))
            samplings.append(sampling)
        selected = modes.select_alternative([c.text for c in completions])
        chosen = completions[selected]
        ai = chosen.accounting()
        ai["alternatives"] = [{"text": c.text, "sampling": s, **c.accounting()}
                              for c, s in zip(completions, samplings)]
        ai["selected"] = selected
        ai["selection_rule"] = "longest text, ties to the earliest"
    else:
        sampling = modes.sampling_for(ctx.mode, ctx.parameters, provider=client.provider)
        chosen = _call(ctx, client, prompt, model, sampling, stream)
        ai = chosen.accounting()
        ai["sampling"] = sampling
    ai["prompt"] = prompt          # what was actually sent, template rendered: the report shows it
    requested = model or getattr(client, "default_model", None)
    if isinstance(requested, str):
        ai["request_model"] = requested     # what was asked for; "model" is what answered
    ctx.metadata["ai"] = ai
    return {"text": chosen.text, "model": chosen.model, "provider": chosen.provider}
