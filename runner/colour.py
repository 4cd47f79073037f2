"""Colour on the terminal: the one place that decides whether, and which.

Green for success, red for failure, yellow for what is neither (a retry, a partial
success, a skipped or cancelled task). `--color auto|always|never` chooses; with auto (the
default), FORCE_COLOR (any value but 0 or false) turns it on, else NO_COLOR (any value)
turns it off, else a stream gets colour when it is a terminal that is not `dumb`.
Only whole messages are wrapped: text from outside is escaped before (runner.terminal),
so no escape sequence of its own reaches the terminal.
"""
from __future__ import annotations

import os

CHOICES = ("auto", "always", "never")
_RESET = "\x1b[0m"
_CODES = {"green": "\x1b[32m", "red": "\x1b[31m", "yellow": "\x1b[33m", "bold": "\x1b[1m"}
# A task's or a run's status -> its colour.
STATUS_COLOURS = {
    "completed": "green", "success": "green", "valid": "green",
    "failed": "red", "timeout": "red", "failure": "red", "invalid": "red",
    "cancelled": "yellow", "skipped": "yellow", "retrying": "yellow", "partial_success": "yellow", "partialsuccess": "yellow",
    "interrupted": "yellow", "running": "yellow",
}

# --color of this process (runner.cli sets it from the command line).
choice = "auto"


def enabled(stream, environ=None) -> bool:
    """Whether text written to `stream` gets colour."""
    if choice != "auto":
        return choice == "always"
    environ = os.environ if environ is None else environ
    forced = environ.get("FORCE_COLOR")
    if forced is not None and forced.strip().lower() not in ("0", "false", "no"):
        return True
    if environ.get("NO_COLOR"):
        return False
    if forced is not None:      # FORCE_COLOR=0: never
        return False
    try:
        return stream.isatty() and environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):        # no isatty, or a closed stream
        return False


class Palette:
    """Wraps text in a colour when the stream it is written to gets colour."""

    def __init__(self, stream, environ=None):
        self.on = enabled(stream, environ)

    def paint(self, text: str, colour: str | None) -> str:
        if not self.on or colour is None or not text:
            return text
        return f"{_CODES[colour]}{text}{_RESET}"

    def status(self, text: str, status: str | None = None) -> str:
        """`text` in the colour of `status` (default: the text itself is the status)."""
        return self.paint(text, STATUS_COLOURS.get(status if status is not None else text))

    def green(self, text: str) -> str:
        return self.paint(text, "green")

    def red(self, text: str) -> str:
        return self.paint(text, "red")

    def yellow(self, text: str) -> str:
        return self.paint(text, "yellow")
