"""Untrusted text made safe to write to a terminal: the one place that decides how.

AI answers, error messages, ALT keys and ids come from outside; an ESC or CSI sequence
among them would let them rewrite the user's terminal, and a line break in a key would
forge a line of output.
"""
from __future__ import annotations

import re

# C0 and C1 control characters and DEL, but tab and line feed: what may be dropped from a
# streamed text whose lines are its own.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Every control character: what is escaped in one line of a message.
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def strip_controls(text: str) -> str:
    """`text` without control characters, tab and line feed kept: for a streamed text (an
    AI answer, a task's error) whose lines are its own."""
    return _CONTROL.sub("", text)


def escape_controls(text: str) -> str:
    """`text` on one line, every control character written as an escape (\\n, \\x1b, ...),
    so a key or id can still be told apart from another: for one line of a message."""
    return _ANY_CONTROL.sub(lambda found: _NAMED.get(found.group(), f"\\x{ord(found.group()):02x}"), text)
