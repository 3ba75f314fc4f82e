"""How wide text is on a terminal: the cells it takes, not its characters.

Pure, stdlib only (``unicodedata``, imported on first non-ASCII text). A model name
such as ``qwen中文助手:7b`` is 11 characters but 15 cells: East Asian Wide and
Fullwidth characters (CJK, most emoji) take two cells; combining marks, format
characters (zero-width joiner) and variation selectors take none; everything else
one. This is what terminals do (wcwidth's rules, as rich counts for its own output),
so columns padded here line up with rich's rendering of the same text.

Text reaching these functions has passed :func:`ollama_resident.textsafe.printable`:
no control characters.
"""

from __future__ import annotations

__all__ = ["cut", "cut_end", "hang", "ljust", "rjust", "width", "wrap"]


def _char(ch: str) -> int:
    import unicodedata

    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if "\u1160" <= ch <= "\u11ff":  # Hangul medial vowels and finals: part of a syllable
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    """Cells ``text`` takes on a terminal.

    >>> width("llama3.2"), width("qwen中文助手:7b"), width("llama🦙:latest"), width("cafe\u0301")
    (8, 15, 14, 4)
    """
    if text.isascii():
        return len(text)
    return sum(_char(ch) for ch in text)


def cut(text: str, cells: int) -> str:
    """The longest start of ``text`` that fits in ``cells``: a wide character that would
    be split is left out whole (the result may then be one cell short).

    >>> cut("qwen中文助手", 7), cut("qwen中文助手", 6), cut("abc", 5)
    ('qwen中', 'qwen中', 'abc')
    """
    if text.isascii():
        return text[: max(0, cells)]
    used = 0
    for n, ch in enumerate(text):
        used += _char(ch)
        if used > cells:
            return text[:n]
    return text


def cut_end(text: str, cells: int) -> str:
    """The longest end of ``text`` that fits in ``cells`` (never half a wide character;
    a combining mark stays with its base).

    >>> cut_end("助手:7b", 4), cut_end("助手:7b", 5), cut_end("助手:7b", 0)
    (':7b', '手:7b', '')
    """
    if cells <= 0:
        return ""
    if text.isascii():
        return text[-cells:]
    used = 0
    for n in range(len(text) - 1, -1, -1):
        used += _char(text[n])
        if used > cells:
            start = n + 1
            while start < len(text) and _char(text[start]) == 0:
                start += 1  # a mark without its base: leave it out too
            return text[start:]
    return text


def ljust(text: str, cells: int) -> str:
    """``text`` padded with spaces on the right to ``cells`` cells.

    >>> ljust("中文", 6) + "|"
    '中文  |'
    """
    return text + " " * (cells - width(text))


def rjust(text: str, cells: int) -> str:
    """``text`` padded with spaces on the left to ``cells`` cells."""
    return " " * (cells - width(text)) + text


def wrap(text: str, cells: int, first: int | None = None) -> list[str]:
    """``text`` in lines of at most ``cells`` cells, broken at spaces (the first line in
    ``first`` cells, when something stands before it: a prefix, a clock).

    The caller puts what it wants before each line (a hanging indent). Spaces where
    a line breaks are dropped; a word wider than a whole line is cut between
    characters, never inside a wide one. Returns at least one line.

    >>> wrap("error text that goes on", 10)
    ['error text', 'that goes', 'on']
    >>> wrap("see https://example.com/a/long/path", 12, first=4)
    ['see', 'https://exam', 'ple.com/a/lo', 'ng/path']
    >>> wrap("模型中文助手", 5)
    ['模型', '中文', '助手']
    """
    from itertools import groupby

    cells = max(1, cells)
    limit = cells if first is None else max(1, first)
    lines: list[str] = []
    line, used = "", 0

    def push() -> None:
        nonlocal line, used, limit
        lines.append(line.rstrip(" "))
        line, used, limit = "", 0, cells

    for is_space, group in groupby(text, key=lambda c: c == " "):
        token = "".join(group)
        size = width(token)
        if is_space:
            if used + size <= limit:
                if line or not lines:  # no leading spaces on a continued line
                    line, used = line + token, used + size
            else:
                push()
            continue
        if used + size <= limit:
            line, used = line + token, used + size
            continue
        if size <= cells and (line.strip() or not lines):
            push()  # the word fits on a line of its own (the first may stay empty)
            line, used = token, size
            continue
        if line.strip():
            push()  # wider than a line: it starts a line of its own, then is cut
        while used + size > limit:  # wider than a line: cut it
            piece = cut(token, limit - used)
            if not piece and not line.strip():
                piece = token[:1]  # a wide character in a one-cell line: it overflows
            line += piece
            token = token[len(piece) :]
            size = width(token)
            push()
        line, used = line + token, used + size
    if line.strip() or not lines:
        lines.append(line.rstrip(" "))
    return lines


MIN_MEASURE = 20
"""A continued line keeps at least this many cells of text (half the width on a terminal
narrower than 40): a deep indent gives way first."""


def hang(text: str, cells: int | None, first: str = "", rest: str | None = None) -> list[str]:
    """``first + text`` in lines of at most ``cells`` cells, each continued line starting
    with ``rest`` (default: spaces as wide as ``first``, so the text hangs under its own
    start). ``cells`` None (a pipe, a file): one line, as it is.

    >>> hang("cannot reach Ollama at http://127.0.0.1:11434", 30, "error: ")
    ['error: cannot reach Ollama at', '       http://127.0.0.1:11434']
    >>> hang("set OLLAMA_DEBUG=1 where the server is started", 34, "fix: ", "  ")
    ['fix: set OLLAMA_DEBUG=1 where the', '  server is started']
    >>> hang("a long line stays whole", None, "note: ")
    ['note: a long line stays whole']
    """
    if cells is None or width(first) + width(text) <= cells:
        return [first + text]
    indent = " " * width(first) if rest is None else rest
    measure = min(MIN_MEASURE, cells // 2)
    if cells - width(indent) < measure:
        indent = indent[: max(0, cells - measure)]
    lines = wrap(text, cells - width(indent), first=cells - width(first))
    return [first + lines[0], *(indent + line for line in lines[1:])]
