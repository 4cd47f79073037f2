"""Prompt templates: Jinja2 in a sandbox, because prompts and dependency outputs are untrusted.

`{{ deps.task_001.output.text }}` reads a dependency's output. The sandbox refuses
attribute access to Python internals and changes to lists and dicts, StrictUndefined turns
a misspelt name into an error instead of an empty string, and nothing is autoescaped
because a prompt is plain text, not HTML.

A template is also a program, so it is given limits:

- size: no value it builds may be longer than MAX_OUTPUT_CHARS. Growth is checked before
  it happens wherever a value can grow: the operators + * % ** and ~, the output of every
  expression, the buffers of {% set %} blocks, filters and macros, and the filters and
  string methods that widen or multiply their input (center, ljust, zfill, format,
  replace, join, indent, wordwrap, expandtabs, translate...). Every other filter or
  method call is refused a width (integer argument) beyond the limit, and its result is
  measured.
- time: rendering stops when the attempt is cancelled (its timeout) or after
  MAX_RENDER_SECONDS, even inside a loop that produces nothing, through an exception
  raised asynchronously in the rendering thread (_RenderWatch, with the core's
  ThreadInterrupt: runner/core/thread_interrupt.pxi).
"""
from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator

import jinja2
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from runner import librunner
from runner.errors import RunnerError

MAX_TEMPLATE_CHARS = 200_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_RENDER_SECONDS = 10.0
MAX_PRODUCT_BITS = 1 << 16          # int * int and int ** int: no result beyond about this many bits
GROWABLE = (str, bytes, bytearray, list, tuple)   # what + and * can make arbitrarily large


class TemplateFailure(RunnerError, ValueError):
    """A prompt template that cannot be rendered; the message says where and why."""

    category = "invalid_alt"


# ---- measuring values ---------------------------------------------------------------------

def _size(value, limit: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters `value` takes as text, counted up to just past `limit`.

    A value that appears several times (a list of the same long string) counts each time,
    as it would when printed or joined; the walk stops once past the limit, so measuring
    costs at most the limit."""
    size, pending = 0, [value]
    while pending and size <= limit:
        item = pending.pop()
        if isinstance(item, (str, bytes, bytearray)):
            size += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            size += 2 + len(item)
            pending.extend(item)
        elif isinstance(item, dict):
            size += 2 + len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 1
        elif isinstance(item, float):
            size += 24                      # the longest repr of a float
        else:
            size += 1
    return size


def _refuse_growth(what: str, size: int) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise TemplateFailure(f"prompt template: {what} would be longer than {MAX_OUTPUT_CHARS} characters")


def _checked_result(what: str, value):
    _refuse_growth(f"the result of {what}", _size(value))
    return value


def _materialised(what: str, value):
    """An iterator (a filter chain such as map(...)) as a list, refused as soon as its items
    grow past the limit: the call it goes to could otherwise build any size from it."""
    if not isinstance(value, Iterator):
        return value
    items, size = [], 0
    for item in value:
        size += _size(item) + 1
        _refuse_growth(what, size)
        items.append(item)
    return items


def _checked_widths(what: str, args, kwargs) -> None:
    """A width, count or padding beyond the output limit is refused before the call."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
            raise TemplateFailure(f"prompt template: {what}: the number {value} is too large")


_FORMAT_NUMBER = re.compile(r"\d+")
_DYNAMIC_WIDTH = re.compile(r"%[-+ #0]*\*|\{[^{}]*\{")      # '%*d', '%-*s', '{:>{w}}'


def _formatted_size(template: str, marker: str, args, kwargs) -> int:
    """An upper bound of the length of template formatted with args (str.format, %, |format):
    each field (marker) at most as long as the largest argument padded to the widest width.
    Widths are the numbers in the template, and the integer arguments too when the
    template takes widths from them ('%*d', '{:>{width}}')."""
    numbers = [int(n) for n in _FORMAT_NUMBER.findall(template)]
    if _DYNAMIC_WIDTH.search(template):
        numbers += [abs(v) for v in (*args, *kwargs.values()) if isinstance(v, int) and not isinstance(v, bool)]
    if any(n > MAX_OUTPUT_CHARS for n in numbers):
        return MAX_OUTPUT_CHARS + 1
    widest = max(numbers, default=0)
    largest = max((_size(v) for v in (*args, *kwargs.values())), default=0)
    return len(template) + template.count(marker) * (largest + widest)


def _lines(text) -> int:
    return text.count("\n") + 1 if isinstance(text, str) else 1


# What a call can grow to, estimated before the call: (the string or sequence it works on,
# its other arguments) -> characters. Shared by the filters and the str methods of the name.
def _padded(target, args, kwargs):
    widths = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
    return max(_size(target), *widths)


def _replaced(target, args, kwargs):
    if len(args) < 2 or not isinstance(target, str) or not isinstance(args[0], str):
        return _size(target)
    old, new = args[0], args[1]
    places = len(target) + 1 if old == "" else target.count(old)
    return len(target) + places * _size(new)


def _joined(target, args, kwargs, separator_first=False):
    if separator_first:                 # str.join: 'sep'.join(items)
        separator, items = target, (args[0] if args else ())
    else:                               # |join(d=''): items|join(sep)
        items, separator = target, (args[0] if args else kwargs.get("d", ""))
    count = len(items) if hasattr(items, "__len__") else 0
    return _size(items) + count * _size(separator)


def _indented(target, args, kwargs):
    width = args[0] if args else kwargs.get("width", 4)
    return _size(target) + _lines(target) * (_size(width) if isinstance(width, str) else abs(int(width)))


def _wrapped(target, args, kwargs):
    # |wordwrap(width=79, break_long_words=True, wrapstring=None, ...): every line holds a
    # word or width characters, so there are at most that many line breaks.
    if not isinstance(target, str):
        return _size(target)
    width = args[0] if args else kwargs.get("width", 79)
    wrapstring = (args[2] if len(args) > 2 else kwargs.get("wrapstring")) or "\n"
    breaks = len(target.split()) + len(target) // max(1, int(width)) + 1
    return len(target) + breaks * _size(wrapstring)


def _tabs_expanded(target, args, kwargs):
    tabsize = args[0] if args else kwargs.get("tabsize", 8)
    return _size(target) + (target.count("\t") if isinstance(target, str) else 0) * abs(int(tabsize))


def _translated(target, args, kwargs):
    table = args[0] if args else {}
    longest = max((_size(v) for v in table.values()), default=1) if isinstance(table, dict) else 1
    return _size(target) * max(1, longest)


def _str_formatted(target, args, kwargs):
    return _formatted_size(target, "{", args, kwargs) if isinstance(target, str) else _size(target)


def _percent_formatted(target, args, kwargs):
    return _formatted_size(target, "%", args, kwargs) if isinstance(target, str) else _size(target)


GROWTH = {
    "center": _padded, "ljust": _padded, "rjust": _padded, "zfill": _padded,
    "replace": _replaced, "indent": _indented, "wordwrap": _wrapped, "expandtabs": _tabs_expanded,
    "translate": _translated,
    "string": lambda target, args, kwargs: _size(target),
    "pprint": lambda target, args, kwargs: 2 * _size(target),
    "tojson": lambda target, args, kwargs: 2 * _size(target),
}
FORMATTERS = frozenset(("format", "format_map"))   # their integer arguments are values, not widths
# Filters whose integer arguments are widths or counts (the rest take plain values, such as
# default(1500000)), and the objects whose methods may allocate by an integer argument
# (str.ljust, bytes.center, int.to_bytes, ...): only these get the width check.
WIDTH_FILTERS = frozenset(GROWTH) | {"truncate", "batch", "slice"}
WIDTH_METHOD_OWNERS = (str, bytes, bytearray, int)
FILTER_GROWTH = {**GROWTH, "join": _joined, "format": _percent_formatted}
METHOD_GROWTH = {**GROWTH, "format": _str_formatted, "format_map": _str_formatted,
                 "join": functools.partial(_joined, separator_first=True)}


def _guarded_filter(name: str, function):
    """The filter, with its growth estimated before and its result measured after."""
    passes_first = _PassArg.from_obj(function) is not None   # the environment or context
    estimate = FILTER_GROWTH.get(name)

    @functools.wraps(function)
    def filter_(*args, **kwargs):
        what = f"the filter {name}"
        args = tuple(_materialised(what, a) for a in args)
        value_args = args[1:] if passes_first else args
        if value_args:
            target, rest = value_args[0], value_args[1:]
            if name in WIDTH_FILTERS:
                _checked_widths(what, rest, kwargs)
            if estimate is not None:
                _refuse_growth(what, estimate(target, rest, kwargs))
        return _checked_result(what, function(*args, **kwargs))
    return filter_


# ---- the environment ----------------------------------------------------------------------

class _BoundedBuffer(list):
    """The output buffer of a {% set %} block, a filter block, a macro or a call block."""

    __slots__ = ("size",)

    def __init__(self):
        super().__init__()
        self.size = 0

    def append(self, piece) -> None:
        self._grow(len(piece))
        super().append(piece)

    def extend(self, pieces) -> None:
        pieces = tuple(pieces)
        self._grow(sum(map(len, pieces)))
        super().extend(pieces)

    def _grow(self, added: int) -> None:
        self.size += added
        _refuse_growth("a block's output", self.size)


class _PromptCodeGenerator(CodeGenerator):
    """Jinja's compiler, with '~' and block buffers going through the environment's checks."""

    def visit_Concat(self, node, frame) -> None:
        self.write("environment.checked_concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node, frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node, frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Tuple(self, node, frame) -> None:
        if node.ctx == "load":          # not the names of {% for a, b in ... %}
            self._checked(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)

    def _checked(self, visit, node, frame) -> None:
        """A literal such as [s, s, s] holds references, not copies, yet prints or joins
        as every copy: it is measured when built."""
        self.write("environment.checked_literal(")
        visit(node, frame)
        self.write(")")

    def buffer(self, frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.new_buffer()")


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on everything that can allocate without bound:
    'x' * 10**9, 9 ** 9 ** 9 or a string doubled 30 times would exhaust memory or CPU
    before any timeout."""

    code_generator_class = _PromptCodeGenerator
    intercepted_binops = frozenset(("*", "**", "+", "%"))

    def __init__(self, **options):
        super().__init__(finalize=self._checked_output, **options)
        del self.globals["lipsum"]          # lipsum(n) writes n paragraphs: not for prompts
        self.filters = {name: _guarded_filter(name, function) for name, function in self.filters.items()}

    @staticmethod
    def new_buffer() -> _BoundedBuffer:
        return _BoundedBuffer()

    @staticmethod
    def checked_concat(values) -> str:
        _refuse_growth("joining with '~'", sum(_size(v) for v in values))
        return "".join(map(str, values))

    @staticmethod
    def checked_literal(value):
        return _checked_result("a literal", value)

    @staticmethod
    def _checked_output(value):
        return _checked_result("an expression", value)

    # Every operation below is a single C call that holds the GIL: the render guard cannot
    # interrupt it, so its size must be known to be small BEFORE it runs.
    def call_binop(self, context, operator, left, right):
        if operator == "*":
            self._check_repeat(left, right)
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                    and abs(left).bit_length() * right > MAX_PRODUCT_BITS:
                raise TemplateFailure("prompt template: the power of these numbers is too large")
        elif operator == "+":
            if isinstance(left, GROWABLE) and isinstance(right, GROWABLE):
                _refuse_growth("'+'", _size(left) + _size(right))
        elif operator == "%" and isinstance(left, (str, bytes, bytearray)):
            arguments = right if isinstance(right, tuple) else (right,)
            template = left if isinstance(left, str) else bytes(left).decode("latin-1")  # same length
            _refuse_growth("'%' formatting", _formatted_size(template, "%", arguments, {}))
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def _check_repeat(left, right) -> None:
        if isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_PRODUCT_BITS:
            raise TemplateFailure("prompt template: the product of these numbers is too large")
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, GROWABLE) and isinstance(count, int) \
                    and _size(sequence) * count > MAX_OUTPUT_CHARS:
                raise TemplateFailure(f"prompt template: repeating a value {count} times is too large")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        method = getattr(__obj, "__wrapped__", __obj)       # str.format comes wrapped by the sandbox
        name = getattr(method, "__name__", "a function")
        args = tuple(_materialised(f"calling {name}", a) for a in args)
        target = getattr(method, "__self__", None)
        if name not in FORMATTERS and isinstance(target, WIDTH_METHOD_OWNERS):
            _checked_widths(f"calling {name}", args, kwargs)
        estimate = METHOD_GROWTH.get(name)
        if estimate is not None and isinstance(target, (str, bytes)):
            _refuse_growth(f"calling {name}", estimate(target, args, kwargs))
        result = super().call(__context, __obj, *args, **kwargs)
        return _checked_result(f"calling {name}", result)


_ENVIRONMENT = PromptEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


# ---- stopping a render --------------------------------------------------------------------

class _RenderStopped(BaseException):
    """Raised asynchronously in the rendering thread. A BaseException so that no
    `except Exception` in a filter can swallow it."""


class _RenderWatch(threading.Thread):
    """Stops the render running in the thread that starts it, from this thread: after
    MAX_RENDER_SECONDS, or at once when stop() is called (the attempt's cancellation),
    through the core's ThreadInterrupt, which raises _RenderStopped in the rendering thread
    at its next bytecode, even in a loop that never yields output, and never after the
    render. It raises again every INSIST_SECONDS until the render has ended: an exception
    raised asynchronously can land in code that only prints it (a weakref callback run by
    the garbage collector mid-render), and one raise then left the render running."""

    INSIST_SECONDS = 0.05

    def __init__(self, interrupt, seconds: float):
        super().__init__(name="prompt-render-watch", daemon=True)
        self._interrupt = interrupt
        self._seconds = seconds
        self._wake = threading.Event()
        self._reason: str | None = None

    def stop(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        self._wake.set()

    def finished(self) -> None:
        self._wake.set()

    def run(self) -> None:
        if self._wake.wait(self._seconds):
            reason = self._reason
        else:
            reason = f"prompt template: rendering took longer than {self._seconds:g} s"
        if reason is None or not self._interrupt.stop(reason):
            return
        while True:
            time.sleep(self.INSIST_SECONDS)
            if not self._interrupt.insist():
                return


def compile_prompt(template: str):
    """The compiled form of a prompt template, for render_prompt(compiled=...): compiling
    is the part of rendering that does not depend on the dependencies' outputs, so a run
    does it before its clock starts. TemplateFailure when the template is too long, is
    not valid, or takes longer than MAX_RENDER_SECONDS to compile."""
    return _guarded(lambda: _compiled(template))


def render_prompt(template: str, context: dict, cancel=None, compiled=None) -> str:
    """The rendered prompt. `cancel` is the attempt's Cancellation: cancelling it stops the
    render at once, even in a loop that produces nothing (a bare threading.Event is only
    checked between pieces of output). MAX_RENDER_SECONDS stops any render. `compiled` is
    compile_prompt(template), when the caller has it already."""
    if "{" not in template:       # plain prompts (the common case) skip the compiler
        return template
    return _guarded(lambda: _render(template, context, cancel, compiled), cancel)


def _guarded(work, cancel=None):
    """work(), stopped by `cancel` or after MAX_RENDER_SECONDS (TemplateFailure saying which)."""
    interrupt = librunner.ThreadInterrupt(_RenderStopped)
    watch = _RenderWatch(interrupt, MAX_RENDER_SECONDS)
    try:
        with interrupt:
            watch.start()
            if hasattr(cancel, "on_cancel"):
                cancel.on_cancel(lambda: watch.stop("prompt template: rendering cancelled"))
            return work()
    except _RenderStopped:
        raise TemplateFailure(interrupt.reason or "prompt template: rendering stopped") from None
    finally:
        watch.finished()


# Templates compiled by validation (template_problem), kept for the run that follows
# (compile_prompt): parse_alt_file checks every prompt template, and compiling one twice
# doubled the start-up of a templated run. Bounded: cleared when full.
_RECENTLY_COMPILED: dict[str, jinja2.Template] = {}
_RECENTLY_COMPILED_MAX = 256


def _compiled(template: str):
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateFailure(f"the prompt template is {len(template)} characters, more than {MAX_TEMPLATE_CHARS}")
    compiled = _RECENTLY_COMPILED.get(template)
    if compiled is not None:
        return compiled
    try:
        compiled = _ENVIRONMENT.from_string(template)
    except Exception as error:
        raise _failure(error) from None
    if len(_RECENTLY_COMPILED) >= _RECENTLY_COMPILED_MAX:
        _RECENTLY_COMPILED.clear()
    _RECENTLY_COMPILED[template] = compiled
    return compiled


def _render(template: str, context: dict, cancel, compiled) -> str:
    try:
        pieces, size = [], 0
        for piece in (compiled or _compiled(template)).generate(context):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateFailure(f"the rendered prompt is longer than {MAX_OUTPUT_CHARS} characters")
            if cancel is not None and cancel.is_set():
                raise TemplateFailure("prompt template: rendering cancelled")
            pieces.append(piece)
        return "".join(pieces)
    except Exception as error:
        raise _failure(error) from None


def _failure(error: Exception) -> TemplateFailure:
    """The TemplateFailure that says what went wrong in compiling or rendering a prompt."""
    if isinstance(error, TemplateFailure):
        return error
    if isinstance(error, jinja2.TemplateSyntaxError):
        return TemplateFailure(_syntax_error_text(error, error.source or ""))
    if isinstance(error, jinja2.exceptions.SecurityError):
        return TemplateFailure(f"prompt template refused by the sandbox: {error}")
    if isinstance(error, jinja2.UndefinedError):
        return TemplateFailure(f"prompt template: {error.message}")
    return TemplateFailure(f"prompt template failed: {type(error).__name__}: {error}")  # filters on untrusted data


_TAG_OPENER = re.compile(r"\{[{%#]")


def _syntax_error_text(error: jinja2.TemplateSyntaxError, template: str) -> str:
    """'prompt template syntax error at line 2, column 7: ...': the column is that of the tag
    the error is in when it is certain (the only tag on the line, or the tag left open at
    the end of the template), else the line alone."""
    line = error.lineno or 1
    place = f"line {line}"
    if "unexpected end of template" in (error.message or "") or "end of template" in (error.message or ""):
        openers = list(_TAG_OPENER.finditer(template))
        if openers:
            start = openers[-1].start()
            line = template.count("\n", 0, start) + 1
            column = start - (template.rfind("\n", 0, start) + 1) + 1
            closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[openers[-1].group()]
            place = f"line {line}, column {column} (the tag opened there is not closed: end it with '{closer}')"
    else:
        lines = template.split("\n")
        openers = list(_TAG_OPENER.finditer(lines[line - 1])) if line <= len(lines) else []
        if len(openers) == 1:
            place = f"line {line}, column {openers[0].start() + 1}"
    return f"prompt template syntax error at {place}: {error.message}"


def dependency_references(template: str) -> list[tuple[str, int, int | None]]:
    """The dependencies a compiled template reads by name, `deps.x` or `deps['x']`, as
    (name, line, column) in the order written; the column is None when it cannot be told."""
    from jinja2 import nodes

    tree = _ENVIRONMENT.parse(template)
    lines = template.split("\n")
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "deps" and node.node.ctx == "load"):
            continue
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue            # deps[some_variable]: known only when rendered
        line = node.lineno or 1
        text = lines[line - 1] if line <= len(lines) else ""
        written = re.search(r"deps\s*(?:\.\s*" + re.escape(name) + r"\b|\[\s*(['\"])" + re.escape(name)
                            + r"\1\s*\])", text)
        found.append((name, line, written.start() + 1 if written else None))
    return sorted(found, key=lambda reference: (reference[1], reference[2] or 0))


def template_facts(template: str) -> tuple[str | None, list]:
    """(why `template` cannot be compiled, or None; the dependencies it reads by name, as
    dependency_references gives them). Used by validation, so a broken prompt, or one
    reading a task that is not a dependency, is reported before anything runs."""
    problem = template_problem(template)
    if problem is not None:
        return problem, []
    try:
        return None, dependency_references(template)
    except Exception:           # compiled a moment ago: a parse cannot fail differently
        return None, []


def template_problem(template: str) -> str | None:
    """Why `template` cannot be compiled (with its line), or None. Used by validation, so a
    broken prompt is reported before anything runs instead of at its task's turn."""
    if len(template) > MAX_TEMPLATE_CHARS:
        return f"the prompt template is {len(template)} characters, more than {MAX_TEMPLATE_CHARS}"
    try:
        _compiled(template)
    except TemplateFailure as failure:
        return str(failure)
    return None
