"""Text from elsewhere (the server, a file), made safe to show: no control sequences.

A model name, an error text or a journal line may hold ``ESC [2J`` (clear the
screen), a carriage return that overwrites a line, a bidi override that
reorders it, or a newline that forges another row. Every path to the terminal
passes text through :func:`printable` (the output sink does it for every line,
the renderers for every table cell), and JSON through :func:`json_safe`.

Unsafe characters are shown escaped, as Python writes them (``\\x1b``,
``\\u202e``), so nothing is lost and nothing acts. Pure; the pattern is compiled
on first use, never at import.
"""

from __future__ import annotations

import functools
import re

__all__ = ["is_printable", "json_safe", "printable"]

# C0 controls (tab and newline handled apart), DEL, C1 controls (0x9b is a one-byte
# CSI to some terminals), line and paragraph separators, and the bidi marks,
# embeddings, overrides and isolates that reorder what is shown.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"


@functools.cache
def _pattern(keep_newlines: bool) -> re.Pattern[str]:
    extra = "" if keep_newlines else "\t\n"
    return re.compile(f"[{_UNSAFE}{extra}]")


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    char = m.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape.

    ``keep_newlines`` keeps newlines and tabs (a block of lines); otherwise the
    result is one line.

    >>> printable("evil\\x1b[2Jname")
    'evil\\\\x1b[2Jname'
    >>> printable("a\\nb"), printable("a\\nb", keep_newlines=True)
    ('a\\\\nb', 'a\\nb')
    >>> printable("llama3.2:latest")
    'llama3.2:latest'
    """
    if text.isascii() and text.isprintable():
        return text  # the common case, without the pattern
    return _pattern(keep_newlines).sub(_escape, text)


def is_printable(text: str) -> bool:
    """True when :func:`printable` would leave ``text`` as it is (one line)."""
    return printable(text) == text


@functools.cache
def _json_pattern() -> re.Pattern[str]:
    return re.compile(f"[{_UNSAFE}]")


def json_safe(dumped: str) -> str:
    """JSON text from ``json.dumps(..., ensure_ascii=False)`` with every control escaped.

    ``json.dumps`` escapes C0 controls but leaves DEL, the C1 range and bidi
    marks raw; they can only occur inside strings, so ``\\uXXXX`` is valid there.

    >>> json_safe('{"name": "a\\x9bb"}')
    '{"name": "a\\\\u009bb"}'
    """
    if dumped.isascii() and dumped.isprintable():
        return dumped
    return _json_pattern().sub(lambda m: f"\\u{ord(m.group(0)):04x}", dumped)
