"""The fast walk of a block of server log for :func:`~ollama_resident.logtimeline.read_timeline`
(pure, no I/O).

A busy server writes, per request, a ``[GIN]`` line and (at DEBUG) a keep-alive timer line;
a 200 MB log holds about 140 000 of each and nearly all of them change nothing. The walk
finds candidate lines with regex scans of the block as bytes (C speed) and settles those two
kinds without decoding or numbering them:

- a timer line whose runner (``runner.pid``) already has that ``duration`` is dropped (the
  scan captures both);
- a POST ``[GIN]`` line is only remembered by its position while no change waits for the
  request behind it; when a record is about to be fed, the last 32 of those (all that
  :class:`~ollama_resident.logtimeline.TimelineBuilder` keeps) are numbered, decoded and
  handed over, so the builder sees exactly what a line-by-line walk would have given it.

Every other candidate line takes the builder's ordinary path (``prefilter``, then
:meth:`~ollama_resident.serverlog.LogReader.one`, then ``feed``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ollama_resident.logtimeline import TimelineBuilder
    from ollama_resident.serverlog import LogReader

_TIMER = "runner with non-zero duration has gone idle, adding timer"
_KEEP = 32  # TimelineBuilder.recent's length
_FAST_MS = 10.0  # logtimeline._FAST_S
_FAST_UNITS = (b"\xc2\xb5s", b"\xce\xbcs", b"ns")  # µs, μs, ns


def _trie(words: list[tuple[str, str]]) -> str:
    """One regex alternation of literal words (each followed by its own pattern), as a
    trie: ``[("load", "A"), ("loaded", "B")]`` -> ``load(?:ed(?:B)|A)``-like."""
    heads: dict[str, list[tuple[str, str]]] = {}
    for word, tail in words:
        heads.setdefault(word[0], []).append((word[1:], tail))
    alts = []
    for c, items in heads.items():
        ends = [tail for rest, tail in items if not rest]
        more = [(rest, tail) for rest, tail in items if rest]
        parts = ([_trie(more)] if more else []) + ends
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        alts.append(re.escape(c) + body)
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


class _Scan:
    """The compiled scans (built on first use, not at import)."""

    def __init__(self, messages: frozenset[str], prefixes: tuple[str, ...]) -> None:
        # A trie of the messages wanted: most slog lines fail on the first letter.
        # Group 1: a timer line (its message first, so that it is the one captured).
        words = [(_TIMER, '(")')]
        words += [(m, '(?:"|\\s|$)') for m in messages if m and m != _TIMER]
        words += [(p, "") for p in prefixes if p]
        pattern = 'msg="?' + _trie(words) if words else "(?!)"
        self.msg = re.compile(pattern.encode("utf-8"), re.MULTILINE)
        # A POST [GIN] line (the same scan as LogReader's for gin="post").
        self.post = re.compile(rb'POST +(?:\x1b\[0m *)?"')


_scan: _Scan | None = None


def _timer_tail(tail: bytes) -> tuple[int, str] | None:
    """``(runner.pid, duration)`` of a timer line from its message on, the way
    ``TimelineBuilder.prefilter`` reads them; None when the line lacks either."""
    i = tail.find(b"runner.pid=")
    j = tail.rfind(b" duration=")
    if i == -1 or j == -1:
        return None
    end = tail.find(b" ", i)
    pid = tail[i + 11 : end if end != -1 else len(tail)]
    if not pid.isdigit():
        return None
    return int(pid), tail[j + 10 :].split(b" ", 1)[0].decode("utf-8", "replace")


def _fast(latency: bytes) -> bool:
    """``logtimeline._fast_answer`` on a latency field already cut out."""
    if latency.endswith(b"ms"):
        try:
            return float(latency[:-2]) < _FAST_MS
        except ValueError:
            return False
    return latency.endswith(_FAST_UNITS)


def walk_block(
    reader: LogReader,
    builder: TimelineBuilder,
    data: bytes,
    first: int,
    messages: frozenset[str],
    prefixes: tuple[str, ...],
) -> int:
    """Feed ``builder`` the records of ``data`` (whole lines, UTF-8), the first numbered
    ``first``; returns how many lines ``data`` holds (a last line without a newline counts)."""
    global _scan
    if _scan is None:
        _scan = _Scan(messages, prefixes)
    reader.learn_zone(data)
    if b"INFO server config" in data:  # old Go-log style lines: the general walk
        return _walk_sorted(_scan, reader, builder, data, first)
    return _walk_ordered(_scan, reader, builder, data, first)


def _walk_ordered(
    scan: _Scan, reader: LogReader, builder: TimelineBuilder, data: bytes, first: int
) -> int:
    """The walk when every candidate line is a message match or a POST line: message
    matches in order, the POST lines before each settled just before it."""
    rfind, find = data.rfind, data.find
    posts = [m.start() for m in scan.post.finditer(data)]
    done = 0  # where the last line handled ends: a second match in it is no new line
    pos, line_no = 0, first  # the start of a line and its number
    lazy: list[int] = []  # POST [GIN] lines not yet handed to the builder
    tails: dict[bytes, tuple[int, str] | None] = {}
    by_pid, recent, one, feed = builder.by_pid, builder.recent, reader.one, builder.feed
    prefilter = builder.prefilter
    size = len(data)

    def ordinary(begin: int) -> None:
        nonlocal pos, line_no, done
        if lazy:
            for at in lazy[-_KEEP:]:
                line_no += data.count(b"\n", pos, at)
                pos = at
                stop = find(b"\n", at)
                recent.append(
                    (line_no, data[at : stop if stop != -1 else size].decode("utf-8", "replace"))
                )
            lazy.clear()
        line_no += data.count(b"\n", pos, begin)
        pos = begin
        stop = find(b"\n", begin)
        done = stop if stop != -1 else size
        raw = data[begin:done].decode("utf-8", "replace")
        if prefilter(line_no, raw):
            return
        rec = one(line_no, raw)
        if rec is not None:
            feed(rec)

    def gin(at: int) -> None:
        """A POST line (at its POST): kept for later unless a change waits for its
        request, it may be an unload request (answered in under 10 ms, read as
        TimelineBuilder.prefilter reads it) or it is no [GIN] line."""
        nonlocal done
        begin = rfind(b"\n", 0, at) + 1
        if not builder.pending:
            head = data[begin:at]
            parts = head.split(b"|", 3)
            if len(parts) == 4 and b"[GIN] " in head and not _fast(parts[2].strip()):
                lazy.append(begin)
                stop = find(b"\n", at)
                done = stop if stop != -1 else size
                return
        ordinary(begin)

    npost, j = len(posts), 0
    nxt = posts[0] if posts else size + 1  # the next POST line
    for m in scan.msg.finditer(data):
        at = m.start()
        while nxt < at:
            if nxt >= done:
                gin(nxt)
            j += 1
            nxt = posts[j] if j < npost else size + 1
        if at < done:
            continue  # in a line already handled
        if m.group(1):
            # A busy runner's timer lines are alike from the message on: read each shape once.
            end = m.end()
            stop = find(b"\n", end)
            tail = data[end : stop if stop != -1 else size]
            got = tails.get(tail)
            if got is None and tail not in tails:
                got = tails[tail] = _timer_tail(tail)
            if got is not None:
                r = by_pid.get(got[0])
                if r is not None and r.keep_alive == got[1]:
                    done = stop if stop != -1 else size
                    continue
        ordinary(rfind(b"\n", 0, at) + 1)
    for at in posts[j:]:
        if at >= done:
            gin(at)
    if lazy:
        ordinary_tail = lazy[-_KEEP:]
        for at in ordinary_tail:
            line_no += data.count(b"\n", pos, at)
            pos = at
            stop = find(b"\n", at)
            recent.append(
                (line_no, data[at : stop if stop != -1 else size].decode("utf-8", "replace"))
            )
        lazy.clear()
    lines = line_no - first + data.count(b"\n", pos)
    return lines + (0 if not data or data.endswith(b"\n") else 1)


def _walk_sorted(
    scan: _Scan, reader: LogReader, builder: TimelineBuilder, data: bytes, first: int
) -> int:
    """The general walk: every candidate line, by line start."""
    rfind = data.rfind
    # line start -> (kind, match): 0 any line, 1 a timer line, 2 a POST [GIN] line.
    starts: dict[int, tuple[int, re.Match[bytes] | None]] = {}
    for m in scan.msg.finditer(data):
        starts[rfind(b"\n", 0, m.start()) + 1] = (1 if m.group(1) else 0, m)
    i = data.find(b"INFO server config")  # old Go-log style, the only one met in the wild
    while i != -1:
        starts[rfind(b"\n", 0, i) + 1] = (0, None)
        i = data.find(b"INFO server config", i + 1)
    for m in scan.post.finditer(data):
        begin = rfind(b"\n", 0, m.start()) + 1
        if begin not in starts:
            starts[begin] = (2, m)

    pos, line_no = 0, first  # the start of a line and its number
    lazy: list[int] = []  # POST [GIN] lines not yet handed to the builder
    tails: dict[bytes, tuple[int, str] | None] = {}
    by_pid, recent, one, feed = builder.by_pid, builder.recent, reader.one, builder.feed

    def raw_at(begin: int) -> tuple[int, str]:
        nonlocal pos, line_no
        line_no += data.count(b"\n", pos, begin)
        pos = begin
        stop = data.find(b"\n", begin)
        return line_no, data[begin : stop if stop != -1 else len(data)].decode("utf-8", "replace")

    def hand_over() -> None:
        for begin in lazy[-_KEEP:]:
            recent.append(raw_at(begin))
        lazy.clear()

    for begin in sorted(starts):
        kind, found = starts[begin]
        if kind == 1:
            assert found is not None
            # A busy runner's timer lines are alike from the message on: read each shape once.
            stop = data.find(b"\n", found.end())
            tail = data[found.end() : stop if stop != -1 else len(data)]
            got = tails.get(tail)
            if got is None and tail not in tails:
                got = tails[tail] = _timer_tail(tail)
            if got is not None:
                r = by_pid.get(got[0])
                if r is not None and r.keep_alive == got[1]:
                    continue
        elif kind == 2 and not builder.pending:
            assert found is not None
            # Kept for later unless it may be an unload request (answered in under 10 ms,
            # read as TimelineBuilder.prefilter reads it) or is no plain [GIN] line.
            head = data[begin : found.start()]
            parts = head.split(b"|", 3)
            if len(parts) == 4 and b"[GIN] " in head and not _fast(parts[2].strip()):
                lazy.append(begin)
                continue
        if lazy:
            hand_over()
        n, raw = raw_at(begin)
        if builder.prefilter(n, raw):
            continue
        rec = one(n, raw)
        if rec is not None:
            feed(rec)
    if lazy:
        hand_over()
    lines = line_no - first + data.count(b"\n", pos)
    return lines + (0 if not data or data.endswith(b"\n") else 1)
