"""Fuzz target: prompt templates (runner/execution/prompt_templates.py). Any template text over a
context of dependency outputs renders, or is refused with TemplateFailure; nothing else
escapes (the executor turns TemplateFailure into the task's error)."""
import atheris

with atheris.instrument_imports():
    from runner.execution import prompt_templates
    from runner.execution.prompt_templates import TemplateFailure, render_prompt

from host import main

# The time limit is the same mechanism at any length: a shorter one fuzzes more inputs.
prompt_templates.MAX_RENDER_SECONDS = 1.0
CONTEXT = {
    "deps": {"task_001": {"status": "completed", "output": {"text": "first answer", "n": 3,
                                                           "items": [1, "two", {"three": 3.0}]},
                          "error": None},
             "failed": {"status": "failed", "output": None, "error": "boom"}},
    "task": {"id": "task_002", "description": "Summarise {{ deps }}", "parameters": {"model": "echo"}},
}


def test_one_input(data: bytes) -> None:
    template = data.decode("utf-8", "replace")
    try:
        rendered = render_prompt(template, CONTEXT)
    except TemplateFailure as refused:
        if not str(refused):
            raise AssertionError("TemplateFailure without a message") from None
        return
    if not isinstance(rendered, str):
        raise AssertionError(f"render_prompt returned {type(rendered).__name__}")


if __name__ == "__main__":
    main(test_one_input)
