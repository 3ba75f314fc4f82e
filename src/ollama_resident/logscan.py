"""The fast walk of a block of server log for :func:`~ollama_resident.logtimeline.read_timeline`
(pure, no I/O).

A busy server writes, per request, a ``[GIN]`` line and (at DEBUG) a keep-alive timer line:
a 200 MB log holds hundreds of thousands of each, and nearly all of them change nothing.
The walk finds the lines that may matter with regex scans of the block as bytes (C speed)
and never meets the others in Python:

- **Messages** the timeline reads (one regex, a trie of them). A keep-alive timer line
  whose runner already has that ``duration`` changes nothing: the scan itself skips it, by
  a negative lookahead on the line's tail (``runner.* ... duration=...``, alike for every
  request to a runner), rebuilt whenever a runner's keep-alive changes. The first line of
  a new shape is read in Python once.
- **POST** ``[GIN]`` **lines** (who made a change) are left in the block as a
  :class:`PostRun` between two lines that matter, and cut into lines only when a change
  asks for the request behind it, newest first and only as far back as it looks (see
  :class:`~ollama_resident.logtimeline.RecentRequests`). While a change waits for the
  request line that follows it (``TimelineBuilder.pending``), each POST line is read.
- In a log without DEBUG lines, a POST answered in under 10 ms may be an unload request
  (``TimelineBuilder.fast``): one scan finds the POST lines that gin's layout does not
  show as slower (``| <latency> | <client:15> | POST``, latency in seconds or at least
  10 ms), and Python reads those.
- Old Go-log ``INFO server config`` lines (Ollama before its slog text handler).

Every line found takes the builder's ordinary path (``prefilter``, then
:meth:`~ollama_resident.serverlog.LogReader.one`, then ``feed``), in log order, so the
builder sees what a line-by-line walk would have given it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ollama_resident.logtimeline import Request, TimelineBuilder
    from ollama_resident.serverlog import LogReader

_TIMER = "runner with non-zero duration has gone idle, adding timer"
# The one old Go-log style line met in the wild (0.3-0.5 era, before the slog handler was
# set up): `2025/01/21 16:42:13 routes.go:1187: INFO server config env="map[...]"`. The
# longer the needle, the faster bytes.find skips.
_OLD_CONFIG = b"INFO server config env="
_POST = rb'POST +(?:\x1b\[0m *)?"'  # a POST [GIN] line's method and path (as LogReader's)


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


def _odd_post_pattern() -> bytes:
    """POST lines that gin's layout does not show as answered in 10 ms or more.

    gin writes ``[GIN] <time> | <status> | <latency:13> | <client:15> | POST ...``: the
    latency's end sits 21 bytes before ``POST`` whenever the client fits its 15 columns.
    A latency there that ends in ``<digit>s`` (seconds, minutes) or is a ``ms`` with two
    or more whole digits is slow; every other POST line (a fast one, a long client
    address, colours, no [GIN] at all) is found and read in Python.
    """
    sep = rb" \| .{15} \| POST"
    # Most often first: seconds, then Go's six decimals of a millisecond.
    slow = [rb"[0-9]s" + sep]
    slow += [rb"[0-9]{2}\.[0-9]{%d}ms" % d + sep for d in range(6, 0, -1)]
    slow += [rb" [0-9]{2}ms" + sep, rb" [0-9]{3}ms" + sep]
    return b"POST" + b"".join(b"(?<!" + s + b")" for s in slow) + _POST[4:]


class _Scans:
    """The compiled scans (built on first use, not at import)."""

    def __init__(self, messages: frozenset[str], prefixes: tuple[str, ...]) -> None:
        # A trie of the messages wanted: most slog lines fail on the first letter.
        # Group 1: a timer line (its message first, so that it is the one captured).
        words = [(_TIMER, '(")')] if _TIMER in messages else []
        words += [(m, '(?:"|\\s|$)') for m in messages if m and m != _TIMER]
        words += [(p, "") for p in prefixes if p]
        pattern = 'msg="?' + _trie(words) if words else "(?!)"
        self.msg = re.compile(pattern.encode("utf-8"), re.MULTILINE)
        self.post = re.compile(_POST)
        self.odd_post = re.compile(_odd_post_pattern())


_scans: _Scans | None = None


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


class PostRun:
    """The POST ``[GIN]`` lines of ``data[lo:hi]`` (whole lines; the line at ``hi`` is
    number ``line_hi``), cut out newest first on demand (a
    :class:`~ollama_resident.logtimeline.LazyLines`)."""

    __slots__ = ("cur", "data", "got", "line", "lo", "mark", "post")

    def __init__(self, data: bytes, lo: int, hi: int, line_hi: int, post: re.Pattern[bytes]):
        self.data = data
        self.lo = lo
        self.cur = hi  # not yet looked at: data[lo:cur]
        self.mark, self.line = hi, line_hi  # the line at `mark` is number `line`
        self.post = post
        self.got: list[Request | tuple[int, str]] = []

    def more(self) -> bool:
        data, lo = self.data, self.lo
        while self.cur > lo:
            i = data.rfind(b"POST", lo, self.cur)
            if i == -1:
                break
            begin = data.rfind(b"\n", lo, i) + 1 or lo
            if not self.post.match(data, i):
                self.cur = i  # "POST" in other text: an earlier one on the line may be it
                continue
            self.cur = begin
            end = data.find(b"\n", i)
            if end == -1:
                end = len(data)
            if data.find(b"[GIN] ", begin, end) == -1:
                continue
            self.line -= data.count(b"\n", begin, self.mark)
            self.mark = begin
            self.got.append((self.line, data[begin:end].decode("utf-8", "replace")))
            return True
        self.cur = lo
        self.data = b""  # nothing more to cut: let go of the block
        return False


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
    global _scans
    if _scans is None:
        _scans = _Scans(messages, prefixes)
    reader.learn_zone(data)
    return _Walk(_scans, reader, builder, data, first).run()


class _Walk:
    """One block's walk: the lines that matter, in order (see the module's docstring)."""

    def __init__(
        self, scans: _Scans, reader: LogReader, builder: TimelineBuilder, data: bytes, first: int
    ) -> None:
        self.scans, self.reader, self.builder, self.data = scans, reader, builder, data
        self.first = first
        self.mark, self.line_no = 0, first  # the line at `mark` is number `line_no`
        self.run_lo = 0  # POST lines since here are not yet handed to the builder
        self.tails: dict[bytes, tuple[int, str] | None] = {}  # timer line tail -> its reading
        self.state: tuple[tuple[int, str | None], ...] = ()

    def _timer_state(self) -> tuple[tuple[int, str | None], ...]:
        by_pid = self.builder.by_pid  # empty in an INFO log
        return tuple((pid, r.keep_alive) for pid, r in by_pid.items()) if by_pid else ()

    def _unchanged(self) -> set[bytes]:
        """The timer tails seen whose runner already has that keep-alive."""
        by_pid = self.builder.by_pid
        keep: dict[bytes, tuple[int, str] | None] = {}
        for tail, got in self.tails.items():
            if got is not None and got[0] in by_pid:
                keep[tail] = got
        self.tails = keep  # runners gone are not met again
        return {
            t for t, got in keep.items() if got is not None and by_pid[got[0]].keep_alive == got[1]
        }

    def run(self) -> int:
        data, builder, scans = self.data, self.builder, self.scans
        size = len(data)
        find, rfind = data.find, data.rfind
        old = []
        if _OLD_CONFIG in data:
            i = find(_OLD_CONFIG)
            while i != -1:
                old.append(i)
                i = find(_OLD_CONFIG, i + 1)
        # A POST answered fast matters only while no DEBUG line says what each unload was.
        odd = [] if builder.has_debug else [m.start() for m in scans.odd_post.finditer(data)]
        self.state = self._timer_state()
        unchanged = self._unchanged()
        matches = scans.msg.finditer(data)
        m = next(matches, None)
        oi = di = 0
        post_at = -1  # the next POST line while a change waits for one (-1: not looked)
        pos = 0  # everything before it is handled; a line starts here
        while True:
            # The next line found by the other scans ...
            at, kind = size + 1, 1  # 1 a line to read, 2 a POST line the layout may not show
            while oi < len(old) and old[oi] < pos:
                oi += 1
            if oi < len(old):
                at = old[oi]
            while di < len(odd) and odd[di] < pos:
                di += 1
            if di < len(odd) and odd[di] < at:
                at, kind = odd[di], 2
            if builder.pending:
                if post_at < pos:
                    pm = scans.post.search(data, pos)
                    post_at = pm.start() if pm is not None else size + 1
                if post_at < at:
                    at, kind = post_at, 1
            # ... and before it, the message scan's, past the timer lines that change
            # nothing (a busy server's: one per request).
            while m is not None:
                start = m.start()
                if start >= at:
                    break
                if start >= pos:
                    if m.group(1) is None:
                        at, kind = start, 0
                        break
                    stop = find(b"\n", m.end())
                    tail = data[m.end() : stop if stop != -1 else size]
                    if tail not in unchanged:
                        if tail in self.tails:
                            got = self.tails[tail]
                        else:
                            got = self.tails[tail] = _timer_tail(tail)
                        r = builder.by_pid.get(got[0]) if got is not None else None
                        if r is None or got is None or r.keep_alive != got[1]:
                            at, kind = start, 0
                            break
                        unchanged.add(tail)
                m = next(matches, None)
            if at > size:
                break
            end = find(b"\n", at)
            if end == -1:
                end = size
            begin = rfind(b"\n", 0, at) + 1
            if kind == 2 and not builder.pending and self._slow_gin(begin, at):
                pos = end + 1  # stays in the run of POST lines
                continue
            self._read(begin, end)
            pos = end + 1
            state = self._timer_state()
            if state != self.state:
                self.state = state
                unchanged = self._unchanged()
        self._hand_over(size, self._number(size))
        builder.recent.seal()
        lines = self._number(size) - self.first
        return lines + (0 if not data or data.endswith(b"\n") else 1)

    def _slow_gin(self, begin: int, at: int) -> bool:
        """Whether the line at ``begin`` with POST at ``at`` is a [GIN] line answered in 10 ms
        or more (``TimelineBuilder.prefilter``'s reading of the fields after ``[GIN]``)."""
        from ollama_resident.logtimeline import _fast_answer

        g = self.data.find(b"[GIN] ", begin, at)
        if g == -1:
            return False
        head = self.data[g:at].decode("utf-8", "replace")  # [GIN] ... | client | (POST)
        return head.count("|") >= 3 and not _fast_answer(head)

    def _hand_over(self, begin: int, line_no: int) -> None:
        """The POST lines before the line at ``begin`` (number ``line_no``) go to the
        builder as one run."""
        if self.run_lo < begin:
            run = PostRun(self.data, self.run_lo, begin, line_no, self.scans.post)
            self.builder.recent.append(run)

    def _number(self, begin: int) -> int:
        self.line_no += self.data.count(b"\n", self.mark, begin)
        self.mark = begin
        return self.line_no

    def _read(self, begin: int, end: int) -> None:
        """The builder's ordinary path for the line ``data[begin:end]``."""
        n = self._number(begin)
        self._hand_over(begin, n)
        self.run_lo = end + 1
        raw = self.data[begin:end].decode("utf-8", "replace")
        if self.builder.prefilter(n, raw):
            return
        rec = self.reader.one(n, raw)
        if rec is not None:
            self.builder.feed(rec)
