"""Prompt templates: Jinja2 in a sandbox, because prompts and dependency outputs are untrusted.

`{{ deps.task_001.output.text }}` reads a dependency's output. The sandbox refuses
attribute access to Python internals, StrictUndefined turns a misspelt name into an
error instead of an empty string, and nothing is autoescaped because a prompt is plain
text, not HTML.
"""
from __future__ import annotations

import jinja2
from jinja2.sandbox import SandboxedEnvironment

MAX_TEMPLATE_CHARS = 200_000
MAX_OUTPUT_CHARS = 1_000_000



class PromptEnvironment(SandboxedEnvironment):
    """The sandbox, plus limits on the operators that can allocate without bound:
    'x' * 10**9 or 9 ** 9 ** 9 would exhaust memory or CPU before any timeout."""

    intercepted_binops = frozenset(("*", "**"))

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) \
                        and len(sequence) * count > MAX_OUTPUT_CHARS:
                    raise TemplateFailure(f"prompt template: repeating a value {count} times is too large")
        if operator == "**" and isinstance(right, int) and isinstance(left, (int, float)) \
                and abs(right) > 64 and abs(left) > 1:
            raise TemplateFailure(f"prompt template: the power {left} ** {right} is too large")
        return super().call_binop(context, operator, left, right)


_ENVIRONMENT = PromptEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateFailure(ValueError):
    """A prompt template that cannot be rendered; the message says where and why."""


def render_prompt(template: str, context: dict, cancel=None) -> str:
    """The rendered prompt. Rendering is streamed (generate) so that output size and the
    attempt's cancel event are checked as it goes: a thread cannot be killed, and a
    template looping over a large range would otherwise outlive its timeout."""
    if "{" not in template:       # plain prompts (the common case) skip the compiler
        return template
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateFailure(f"the prompt template is {len(template)} characters, more than {MAX_TEMPLATE_CHARS}")
    try:
        pieces, size = [], 0
        for piece in _ENVIRONMENT.from_string(template).generate(context):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateFailure(f"the rendered prompt is longer than {MAX_OUTPUT_CHARS} characters")
            if cancel is not None and cancel.is_set():
                raise TemplateFailure("prompt template: rendering cancelled")
            pieces.append(piece)
        text = "".join(pieces)
    except TemplateFailure:
        raise
    except jinja2.TemplateSyntaxError as error:
        raise TemplateFailure(f"prompt template syntax error at line {error.lineno}: {error.message}") from None
    except jinja2.exceptions.SecurityError as error:
        raise TemplateFailure(f"prompt template refused by the sandbox: {error}") from None
    except jinja2.UndefinedError as error:
        raise TemplateFailure(f"prompt template: {error.message}") from None
    except Exception as error:  # errors raised by filters on untrusted data
        raise TemplateFailure(f"prompt template failed: {type(error).__name__}: {error}") from None
    return text
