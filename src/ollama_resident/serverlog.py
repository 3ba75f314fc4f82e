"""Ollama's server log, line by line: unwrap, then parse (pure: no I/O, no clock).

A log reaches us raw (``ollama serve > log 2>&1``, the macOS/Windows app's
``server.log``) or wrapped by what collected it; :func:`iter_records` takes any mix of
these, line by line:

- ``journalctl`` prefixes: default ``Nov 29 16:37:35 host ollama[1234]: ``,
  ``-o short-iso`` (``2026-11-29T16:37:35+0000 host ollama[1234]: ``) and
  ``-o short-precise`` (``Nov 29 16:37:35.123456 host ...``); ``-o cat`` is raw;
- ``docker logs -t`` (an RFC 3339 timestamp and a space) and ``docker compose logs``
  (``ollama-1  | ``), also combined;
- ANSI colour codes (gin colours status and method on a TTY), CRLF line ends, a
  truncated last line, and llama.cpp output interleaved with the server's own lines.

Line shapes (Ollama 0.24, ``server/routes.go``, ``server/sched.go``, gin's logger):

- slog text: ``time=2026-11-29T16:37:35.218Z level=INFO source=routes.go:1864
  msg="Listening on 127.0.0.1:41917 (version 0.24.0)"`` then ``key=value`` pairs,
  values Go-quoted when they hold spaces, quotes or nothing; runner details are a group
  (``runner.name=... runner.pid=4128 runner.model=<blob path> runner.num_ctx=4096``).
- gin: ``[GIN] 2026/11/29 - 16:37:30 | 200 |   24.562759ms |       127.0.0.2 | POST
  "/api/generate"``: local wall time to the second with no zone, written when the
  response ends (so the request started ``latency`` earlier), client address (honours
  ``X-Forwarded-For``), method, Go-quoted path with its query.
- old Go log (0.3 to 0.5 era): ``2025/01/21 16:42:13 routes.go:1187: INFO server config
  env="map[...]"``.

Everything else (llama.cpp output, the key-generation preamble, systemd's own lines) is
a ``text`` record. Patterns are compiled on first use, not at import.

>>> recs = list(iter_records([
...     'time=2026-11-29T16:37:35.218Z level=INFO source=routes.go:1864 '
...     'msg="Listening on 127.0.0.1:41917 (version 0.24.0)"',
...     '[GIN] 2026/11/29 - 16:37:35 | 200 |  306.011642ms |       127.0.0.1 | POST     '
...     '"/api/generate"',
... ]))
>>> recs[0].kind, recs[0].level, recs[0].msg, listening(recs[0].msg)
('slog', 'INFO', 'Listening on 127.0.0.1:41917 (version 0.24.0)', ('127.0.0.1:41917', '0.24.0'))
>>> g = recs[1].gin
>>> (g.method, g.path, g.client, g.status, round(g.latency_s, 3), recs[1].time.isoformat())
('POST', '/api/generate', '127.0.0.1', 200, 0.306, '2026-11-29T16:37:35+00:00')
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache

__all__ = [
    "FOREVER_NS",
    "GinRequest",
    "LogReader",
    "Prefix",
    "Record",
    "blob_digest",
    "env_map",
    "go_fields",
    "go_unquote",
    "iter_records",
    "listening",
    "parse_size",
    "unwrap",
]

FOREVER_NS = 2**63 - 1
"""``2562047h47m16.854775807s``: the keep-alive Ollama stores (and logs) for a pin (-1)."""

_MODEL_PATHS = (
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
)


class _Patterns:
    """Every regex of this module, compiled once on first use."""

    def __init__(self) -> None:
        self.ansi = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
        # docker compose logs: "ollama-1  | " (service name, padding, bar).
        self.compose = re.compile(r"([A-Za-z0-9][\w.-]*) +\| ?")
        # docker logs -t: RFC 3339 with nanoseconds and a space.
        self.docker_ts = re.compile(
            r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
        )
        # journalctl: "Nov 29 16:37:35[.123456] host ident[pid]: " or short-iso
        # "2026-11-29T16:37:35+0000 host ident[pid]: " (month names follow the locale).
        self.journal = re.compile(
            r"(?:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
            r"|(\S+ +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?)) "
            r"(\S+) ([^\s\[\]:]+)\[(\d+)\]: "
        )
        self.gin = re.compile(
            r"\[GIN\] (\d{4})/(\d\d)/(\d\d) - (\d\d):(\d\d):(\d\d) \| *(\d{3}) *\| *"
            r"([^|]*?) *\| *([^|]*?) *\| *([A-Z]+) *(\"[^\"\\]*(?:\\.[^\"\\]*)*\"?|\S*)"
        )
        self.golog = re.compile(
            r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? (\S+:\d+): "
            r"(DEBUG|INFO|WARN|WARNING|ERROR) (.*)"
        )
        # Quoted strings unrolled ("[^"\\]*(?:\\.[^"\\]*)*"): sre runs each stretch at once.
        self.attr = re.compile(
            r'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s="]+))=("[^"\\]*(?:\\.[^"\\]*)*"|\S*)'
        )
        self.quoted = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
        self.escape = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
        self.golog_msg_end = re.compile(r" [A-Za-z_][\w.]*=")
        self.listening = re.compile(r"^Listening on (\S+)(?: \(version ([^)]+)\))?")
        self.blob = re.compile(r"sha256[-:]([0-9a-f]{64}|[0-9a-f]{12,})")
        self.size = re.compile(r"([\d.]+) *([KMGTP]i?B|B)")
        # The usual slog line in one match (no escapes in msg); any other shape: _slog.
        self.slog = re.compile(
            r'time=(\S+) level=(\S+) source=\S+ msg=(?:"([^"\\]*)"|([^\s"]\S*))(?: (.*))?$'
        )
        self.stray_time = re.compile(r"time=\d{4}-\d\d-\d\dT")
        self.first_time = re.compile(r"time=(\d{4}-\S+)")
        self.first_time_b = re.compile(rb"time=(\d{4}-\S+)")


@lru_cache(maxsize=1)
def _p() -> _Patterns:
    return _Patterns()


_ISO_Z = sys.version_info >= (3, 11)  # datetime.fromisoformat reads "Z" itself
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def go_unquote(value: str) -> str:
    """The text of a Go-quoted string (``strconv.Quote``); unquoted text is returned as is.

    >>> go_unquote('"a \\\\"b\\\\" \\\\u00b5"')
    'a "b" µ'
    """
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        body = value[1:-1]
    elif value.startswith('"'):  # a truncated line
        body = value[1:]
    else:
        return value
    if "\\" not in body:
        return body

    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "xuU" and len(s) > 1:
            return chr(int(s[1:], 16))
        return _ESCAPES.get(s, s)

    return _p().escape.sub(one, body)


# -- wrappers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefix:
    """What a collector put before the server's own line.

    ``source`` is ``journal``, ``docker`` (``docker logs -t``) or ``compose``; ``time``
    is the collector's timestamp as text (receive time; journald's default form has no
    year); ``ident``/``pid`` are journald's (``ollama[1234]``, ``systemd[1]``).
    """

    source: str
    time_text: str | None = None
    host: str | None = None
    ident: str | None = None
    pid: int | None = None
    service: str | None = None

    @property
    def time(self) -> datetime | None:
        """The collector's time when it has a year and a zone (docker -t, short-iso)."""
        t = self.time_text
        if not t or not t[:4].isdigit():
            return None
        return _parse_iso(t)


def unwrap(line: str) -> tuple[str, Prefix | None]:
    """The server's own text of one collected line, and the prefix taken off.

    Strips the line end (LF, CRLF), ANSI escapes, then one ``docker compose``, one
    ``docker logs -t`` and one ``journalctl`` prefix, in that order, each only if present.

    >>> unwrap("Nov 29 16:37:35 myhost ollama[1234]: [GIN] x\\r\\n")
    ('[GIN] x', Prefix(source='journal', time_text='Nov 29 16:37:35', host='myhost', \
ident='ollama', pid=1234, service=None))
    >>> unwrap("ollama-1  | 2026-11-29T16:37:35.123456789Z time=x")[0]
    'time=x'
    """
    text = line.rstrip("\r\n")
    if "\x1b" in text:
        text = _p().ansi.sub("", text)
    first = text[:1]
    if first == "t" and text.startswith("time="):
        return text, None
    if first == "[" and text.startswith("[GIN]"):
        return text, None
    p = _p()
    prefix: Prefix | None = None
    m = p.compose.match(text)
    if m is not None and not text.startswith("time="):
        prefix = Prefix("compose", service=m.group(1))
        text = text[m.end() :]
    m = p.docker_ts.match(text)
    if m is not None:
        rest = text[m.end() :]
        # "2026-...Z host ident[pid]: " is journalctl -o short-iso, not docker.
        j = p.journal.match(text)
        if j is None:
            prefix = Prefix(
                "docker", time_text=m.group(1), service=prefix.service if prefix else None
            )
            return rest, prefix
    m = p.journal.match(text)
    if m is not None:
        pid = m.group(5)
        prefix = Prefix(
            "journal",
            time_text=m.group(1) or m.group(2),
            host=m.group(3),
            ident=m.group(4),
            pid=int(pid) if pid else None,
            service=prefix.service if prefix else None,
        )
        text = text[m.end() :]
    return text, prefix


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GinRequest:
    """One ``[GIN]`` access line: written when the response ended.

    ``end`` is the line's wall time (to the second, so the true end is within
    ``[end, end + 1 s)``); ``latency_s`` is gin's latency (whole seconds above one
    minute); ``client`` is gin's ``ClientIP()`` (``X-Forwarded-For`` first).
    """

    end: datetime
    status: int
    latency_s: float
    client: str
    method: str
    path: str

    @property
    def start(self) -> datetime:
        """When the request started: the line's time minus the latency (second resolution)."""
        return self.end - timedelta(seconds=self.latency_s)

    @property
    def is_model_request(self) -> bool:
        """A POST that names a model and can load, pin or stop it (generate, chat, embed...)."""
        return self.method == "POST" and self.path.split("?", 1)[0] in _MODEL_PATHS

    def covers(self, when: datetime, slack_s: float = 0.0) -> bool:
        """Whether the request may have been running at ``when`` (second resolution)."""
        lo = self.start - timedelta(seconds=slack_s)
        hi = self.end + timedelta(seconds=1 + slack_s)
        return lo <= when < hi

    def describe(self) -> str:
        return f"{self.method} {self.path} from {self.client}"


class Record:
    """One line of the log, parsed as far as is cheap; the rest on first use.

    - ``line_no``: 1-based number in the input given to :func:`iter_records`;
    - ``kind``: ``slog``, ``gin``, ``golog`` (old Go-log style) or ``text``;
    - ``level``: ``DEBUG``/``INFO``/``WARN``/``ERROR`` (``""`` for gin and text);
    - ``msg``: the slog message (unquoted); the text of a ``text`` record; ``""`` for gin;
    - ``time``: aware datetime (slog: its own offset; gin and golog: local wall time in
      the zone of the slog lines around it, else the ``tz`` given); ``None`` for text;
    - ``attrs``: the ``key=value`` pairs after ``msg`` (unquoted), e.g. ``runner.name``;
    - ``gin``: the :class:`GinRequest` of a gin line;
    - ``prefix``: what :func:`unwrap` took off; ``text``: the server's own line.
    """

    __slots__ = (
        "_attrs",
        "_rest",
        "_time",
        "_time_text",
        "gin",
        "kind",
        "level",
        "line_no",
        "msg",
        "prefix",
        "text",
    )

    def __init__(
        self,
        line_no: int,
        kind: str,
        text: str,
        *,
        level: str = "",
        msg: str = "",
        time_text: str | None = None,
        time: datetime | None = None,
        rest: str = "",
        gin: GinRequest | None = None,
        prefix: Prefix | None = None,
    ) -> None:
        self.line_no = line_no
        self.kind = kind
        self.text = text
        self.level = level
        self.msg = msg
        self._time_text = time_text
        self._time = time
        self._rest = rest
        self._attrs: dict[str, str] | None = None
        self.gin = gin
        self.prefix = prefix

    @property
    def time(self) -> datetime | None:
        if self._time is None and self._time_text is not None:
            self._time = _parse_iso(self._time_text)
            self._time_text = None
        return self._time

    @property
    def attrs(self) -> Mapping[str, str]:
        if self._attrs is None:
            self._attrs = _parse_attrs(self._rest) if self._rest else {}
        return self._attrs

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrs.get(key, default)

    def __repr__(self) -> str:
        return f"Record({self.line_no}, {self.kind!r}, {self.level!r}, {self.msg!r})"


def _parse_attrs(rest: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if "\\" not in rest:  # nothing escaped (nearly every line): quotes come off as they are
        for qkey, key, value in _p().attr.findall(rest):
            if value[:1] == '"':
                value = value[1:-1] if len(value) >= 2 and value[-1] == '"' else value[1:]
            out[qkey or key] = value
        return out
    for qkey, key, value in _p().attr.findall(rest):
        out[go_unquote(f'"{qkey}"') if qkey else key] = go_unquote(value)
    return out


def _zone_of(time_text: str) -> tzinfo | None:
    """The zone at the end of a slog ``time=`` value (``Z`` or ``+05:30``)."""
    if time_text.endswith("Z"):
        return timezone.utc
    tail = time_text[-6:]
    if len(tail) == 6 and tail[0] in "+-" and tail[3] == ":":
        try:
            offset = timedelta(hours=int(tail[1:3]), minutes=int(tail[4:6]))
        except ValueError:
            return None
        return timezone(-offset if tail[0] == "-" else offset)
    return None


def _parse_iso(text: str) -> datetime | None:
    """RFC 3339 as Go and journald write it: 'Z' or an offset (with or without a colon),
    any number of fraction digits; ``None`` when it does not parse."""
    t = text.strip()
    if len(t) == 24 and t[23] == "Z" and t[19] == ".":  # slog's own form, most lines
        try:
            if _ISO_Z:
                return datetime.fromisoformat(t)
            return datetime.fromisoformat(t[:23]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif len(t) >= 5 and t[-5] in "+-" and t[-4:].isdigit():
        t = t[:-2] + ":" + t[-2:]  # +0000 -> +00:00
    dot = t.find(".", 19)
    if dot == -1:
        dot = t.find(",", 19)
    if dot != -1:
        end = dot + 1
        while end < len(t) and t[end].isdigit():
            end += 1
        frac = (t[dot + 1 : end] + "000000")[:6]
        t = t[:dot] + "." + frac + t[end:]
    try:
        value = datetime.fromisoformat(t)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _slog(line_no: int, text: str, prefix: Prefix | None) -> Record:
    # time=<t> level=<L> source=<file:line> msg=<m> <attrs...>
    sp = text.find(" ", 5)
    if sp == -1:
        return Record(line_no, "slog", text, time_text=text[5:], prefix=prefix)
    time_text = text[5:sp]
    pos = sp + 1
    level = ""
    if text.startswith("level=", pos):
        sp = text.find(" ", pos)
        level = text[pos + 6 : sp if sp != -1 else len(text)]
        pos = sp + 1 if sp != -1 else len(text)
        if level == "WARNING":
            level = "WARN"
    if text.startswith("source=", pos):
        sp = text.find(" ", pos)
        pos = sp + 1 if sp != -1 else len(text)
    msg = ""
    rest = ""
    if text.startswith("msg=", pos):
        pos += 4
        end = text.find('"', pos + 1) if text.startswith('"', pos) else -1
        if end != -1 and "\\" not in text[pos:end]:  # no escapes: the next quote ends it
            msg = text[pos + 1 : end]
            pos = end + 1
        elif text.startswith('"', pos):
            m = _p().quoted.match(text, pos)
            if m is None:  # truncated line: take what there is
                msg = go_unquote(text[pos:])
                pos = len(text)
            else:
                msg = go_unquote(m.group(0))
                pos = m.end()
        else:
            sp = text.find(" ", pos)
            end = sp if sp != -1 else len(text)
            msg = text[pos:end]
            pos = end
        rest = text[pos + 1 :]
    else:
        rest = text[pos:]
    return Record(
        line_no, "slog", text, level=level, msg=msg, time_text=time_text, rest=rest, prefix=prefix
    )


def _gin(line_no: int, text: str, prefix: Prefix | None, tz: tzinfo) -> Record | None:
    from ollama_resident.durations import DurationError, parse_go_duration

    m = _p().gin.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        end = datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError:
        return None
    latency_text = m.group(8).strip()
    latency = _quick_latency(latency_text)
    if latency is None:
        try:
            latency = parse_go_duration(latency_text) / 1e9
        except DurationError:
            latency = 0.0
    raw_path = m.group(11)
    path = go_unquote(raw_path) if raw_path.startswith('"') else raw_path
    gin = GinRequest(end, int(m.group(7)), latency, m.group(9).strip(), m.group(10), path)
    return Record(line_no, "gin", text, time=end, gin=gin, prefix=prefix)


_LATENCY_UNITS = (("ms", 1e-3), ("µs", 1e-6), ("μs", 1e-6), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0))


def _quick_latency(text: str) -> float | None:
    """Seconds of a one-unit Go duration (``24.562759ms``, ``191.479µs``); None otherwise."""
    for unit, scale in _LATENCY_UNITS:
        if text.endswith(unit):
            number = text[: -len(unit)]
            try:
                return float(number) * scale
            except ValueError:
                return None  # 1m2s and the like
    return None


def _golog(line_no: int, text: str, prefix: Prefix | None, tz: tzinfo) -> Record | None:
    m = _p().golog.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        when = datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError:
        return None
    level = m.group(8).replace("WARNING", "WARN")
    body = m.group(9)
    cut = _p().golog_msg_end.search(body)
    msg, rest = (body[: cut.start()], body[cut.start() + 1 :]) if cut else (body, "")
    return Record(
        line_no, "golog", text, level=level, msg=msg.strip(), time=when, rest=rest, prefix=prefix
    )


class LogReader:
    """Turns lines (or blocks of lines) into :class:`Record` objects, keeping the zone.

    ``tz`` is the zone for gin and old-style lines (which carry none) until a slog line
    shows the server's offset; by default that offset, else UTC.

    Filters for speed (a 200 MB log holds about a million lines): ``messages`` keeps only
    slog and old-style records whose message is in it or starts with one of ``prefixes``
    (checked before parsing), and drops ``text`` records; ``gin="post"`` keeps only POST
    gin lines, ``gin="none"`` none. Line numbers are always those of the input.
    """

    def __init__(
        self,
        *,
        tz: tzinfo | None = None,
        messages: Collection[str] | None = None,
        prefixes: tuple[str, ...] = (),
        gin: str = "all",
    ) -> None:
        if gin not in ("all", "post", "none"):
            raise ValueError(f"gin must be all, post or none, not {gin!r}")
        self.zone: tzinfo = tz or timezone.utc
        self.zone_known = False
        self.messages = messages
        self.prefixes = prefixes
        self.gin = gin
        self._block_patterns: tuple[re.Pattern[str], ...] | None = None
        self._block_patterns_b: tuple[re.Pattern[bytes], ...] | None = None
        # Called with (line_no, raw line) before a kept line is parsed; True skips it (a
        # consumer that can tell cheaply that a line adds nothing, or keeps it for later).
        self.prefilter: Callable[[int, str], bool] | None = None

    def lines(self, lines: Iterable[str], start_line: int = 1) -> Iterator[Record]:
        """One record per kept line, in order; ``start_line`` numbers the first."""
        one = self.one
        for n, raw in enumerate(lines, start=start_line):
            if self.prefilter is not None and self.prefilter(n, raw):
                continue
            rec = one(n, raw)
            if rec is not None:
                yield rec

    def block(self, text: str | bytes, start_line: int = 1) -> Iterator[Record]:
        """The records of a block of whole lines (``\\n``-separated), as :meth:`lines`.

        ``text`` may be ``bytes`` (UTF-8; only the lines kept are decoded). With a
        ``messages`` filter, candidate lines are found with one regex scan of the block
        per pattern (C speed) instead of a Python step per line.
        """
        if self.messages is None:
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            yield from self.lines(text.split("\n"), start_line)
            return
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        self.learn_zone(data)
        starts: set[int] = set()
        for pattern in self._patterns_b():
            for m in pattern.finditer(data):
                starts.add(data.rfind(b"\n", 0, m.start()) + 1)
        line_no = start_line
        pos = 0
        prefilter = self.prefilter
        for begin in sorted(starts):
            line_no += data.count(b"\n", pos, begin)
            pos = begin
            stop = data.find(b"\n", begin)
            raw = data[begin : stop if stop != -1 else len(data)].decode("utf-8", "replace")
            if prefilter is not None and prefilter(line_no, raw):
                continue
            rec = self.one(line_no, raw)
            if rec is not None:
                yield rec

    def learn_zone(self, data: bytes) -> None:
        """Take the server's zone from the first slog time in ``data`` (UTF-8 lines), once."""
        if not self.zone_known:
            m = _p().first_time_b.search(data)
            if m is not None:
                found = _zone_of(m.group(1).decode("ascii", "replace"))
                if found is not None:
                    self.zone, self.zone_known = found, True

    def _patterns_b(self) -> tuple[re.Pattern[bytes], ...]:
        if self._block_patterns_b is None:
            self._block_patterns_b = tuple(
                re.compile(p.pattern.encode("utf-8"), p.flags & ~re.UNICODE)
                for p in self._patterns()
            )
        return self._block_patterns_b

    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        if self._block_patterns is None:
            assert self.messages is not None
            words = sorted((re.escape(m) for m in self.messages if m), key=len, reverse=True)
            alt = "|".join(words) or "(?!)"
            heads = "|".join(re.escape(p) for p in self.prefixes) or "(?!)"
            pats = [
                re.compile(f'msg="?(?:(?:{alt})(?:"|\\s|$)|{heads})', re.MULTILINE),
                # Old Go-log lines: only "INFO server config" is met in the wild.
                re.compile(r"INFO server config"),
            ]
            if self.gin == "all":
                pats.append(re.compile(r"\[GIN\] "))
            elif self.gin == "post":
                pats.append(re.compile(r'POST +(?:\x1b\[0m *)?"'))
            self._block_patterns = tuple(pats)
        return self._block_patterns

    def _wanted(self, msg: str) -> bool:
        assert self.messages is not None
        return msg in self.messages or (bool(self.prefixes) and msg.startswith(self.prefixes))

    def one(self, n: int, raw: str) -> Record | None:
        """The record of one line numbered ``n``, or None when the filters drop it."""
        messages, gin = self.messages, self.gin
        text, prefix = unwrap(raw)
        first = text[:1]
        if first == "t" and text.startswith("time="):
            if not self.zone_known:
                sp = text.find(" ")
                found = _zone_of(text[5:sp] if sp != -1 else text[5:])
                if found is not None:
                    self.zone, self.zone_known = found, True
            m = _p().slog.match(text)
            if m is None:
                if messages is not None and not self._wanted(_quick_msg(text)):
                    return None
                return _slog(n, text, prefix)
            time_text, level, quoted, bare, rest = m.groups()
            msg = bare if quoted is None else quoted
            if messages is not None and not self._wanted(msg):
                return None
            return Record(
                n,
                "slog",
                text,
                level="WARN" if level == "WARNING" else level,
                msg=msg,
                time_text=time_text,
                rest=rest or "",
                prefix=prefix,
            )
        if first == "[" and text.startswith("[GIN]"):
            if gin == "none":
                return None
            rec = _gin(n, text, prefix, self.zone)
            if rec is None:
                return None if messages is not None else Record(n, "text", text, msg=text)
            if gin == "post" and rec.gin is not None and rec.gin.method != "POST":
                return None
            return rec
        if first.isdigit() and text[4:5] == "/":
            old = _golog(n, text, prefix, self.zone)
            if old is not None:
                return old if messages is None or self._wanted(old.msg) else None
        # llama.cpp output with a server line glued on after it.
        cut = text.find("time=")
        if cut > 0 and _p().stray_time.match(text, cut):
            if messages is None or self._wanted(_quick_msg(text[cut:])):
                return _slog(n, text[cut:], prefix)
            return None
        cut = text.find("[GIN] ")
        if cut > 0 and gin != "none":
            rec = _gin(n, text[cut:], prefix, self.zone)
            if rec is not None:
                if gin == "post" and rec.gin is not None and rec.gin.method != "POST":
                    return None
                return rec
        if messages is None:
            return Record(n, "text", text, msg=text, prefix=prefix)
        return None


def iter_records(
    lines: Iterable[str],
    *,
    tz: tzinfo | None = None,
    start_line: int = 1,
    messages: Collection[str] | None = None,
    gin: str = "all",
) -> Iterator[Record]:
    """One :class:`Record` per input line (wrappers removed), in order.

    ``lines`` may end with or without line ends and may mix wrappers; ``start_line``
    numbers the first line (for a log read from the middle). ``tz``, ``messages`` and
    ``gin`` as in :class:`LogReader`. A line that holds llama.cpp output followed by a
    server line (two processes writing to one stream) yields the server line.
    """
    return LogReader(tz=tz, messages=messages, gin=gin).lines(lines, start_line)


def _quick_msg(text: str) -> str:
    """The message of a slog line without parsing the rest (no unescaping)."""
    i = text.find(" msg=")
    if i == -1:
        return ""
    i += 5
    if text.startswith('"', i):
        j = text.find('"', i + 1)
        return text[i + 1 : j] if j != -1 else text[i + 1 :]
    j = text.find(" ", i)
    return text[i:j] if j != -1 else text[i:]


# -- values --------------------------------------------------------------------------------


def listening(msg: str) -> tuple[str, str | None] | None:
    """``(address, version)`` of a ``Listening on ADDR (version V)`` message, else None.

    >>> listening("Listening on [::]:11434 (version 0.24.0)")
    ('[::]:11434', '0.24.0')
    """
    m = _p().listening.match(msg)
    return (m.group(1), m.group(2)) if m else None


def _split_go(body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    tokens: list[str] = []
    if "[" in body or "{" in body or "]" in body or "}" in body:
        # Split at the spaces outside brackets: a word at a time, not a character.
        depth = 0
        for word in body.split(" "):
            if depth > 0:
                tokens[-1] += " " + word
            else:
                tokens.append(word)
            if "[" in word or "{" in word or "]" in word or "}" in word:
                for c in word:
                    if c in "[{":
                        depth += 1
                    elif c in "]}":
                        depth = max(0, depth - 1)
    else:
        tokens = body.split(" ")
    last: str | None = None
    for token in tokens:
        if not token:
            continue
        key, sep, value = token.partition(":")
        if sep and key and (key[0].isalpha() or key[0] == "_") and key.replace("_", "").isalnum():
            out[key] = value
            last = key
        elif last is not None:  # a value with a space in it
            out[last] += " " + token
    return out


def env_map(value: str) -> dict[str, str]:
    """The ``env`` of a ``server config`` line (Go's ``map[K:v K2: K3:[a b]]`` print).

    Keys as printed; an empty value is ``""``; lists keep their brackets.

    >>> env_map("map[OLLAMA_DEBUG:INFO OLLAMA_HOST:http://127.0.0.1:11434 "
    ...         "OLLAMA_ORIGINS:[http://localhost app://*] OLLAMA_EDITOR: X:1]")
    {'OLLAMA_DEBUG': 'INFO', 'OLLAMA_HOST': 'http://127.0.0.1:11434', \
'OLLAMA_ORIGINS': '[http://localhost app://*]', 'OLLAMA_EDITOR': '', 'X': '1'}
    """
    body = value.strip()
    if body.startswith("map["):
        body = body[4:]
        if body.endswith("]"):
            body = body[:-1]
    return _split_go(body)


def go_fields(value: str) -> dict[str, str]:
    """The fields of a Go ``%+v`` struct print (``{Operation:commit Parallel:1 KvSize:512}``).

    >>> go_fields("{Operation:commit LoraPath:[] Parallel:1 KvSize:2048 KvCacheType: x}")["KvSize"]
    '2048'
    """
    body = value.strip()
    if body.startswith("{"):
        body = body[1:]
        if body.endswith("}"):
            body = body[:-1]
    return _split_go(body)


def blob_digest(text: str) -> str | None:
    """The sha256 hex digest in a blob path (``.../blobs/sha256-<hex>``), else None."""
    m = _p().blob.search(text)
    return m.group(1) if m else None


_SIZE_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5}
_SIZE_UNITS.update({"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5})


def parse_size(text: str) -> int | None:
    """Bytes from Ollama's human sizes (``format.HumanBytes2``: ``"23.5 GiB"``, ``"0 B"``).

    >>> parse_size("664.0 KiB"), parse_size("0 B"), parse_size("lots")
    (679936, 0, None)
    """
    m = _p().size.fullmatch(text.strip())
    if m is None:
        return None
    return round(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
