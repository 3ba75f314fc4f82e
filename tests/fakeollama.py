#!/usr/bin/env python3
"""A loopback fake of the Ollama HTTP API that keeps Ollama's residency rules.

Standard library only, so it also runs standalone (manual runs, benchmarks)::

    python tests/fakeollama.py --port 11434 --max-loaded 3 --preload tiny:-1 --preload tiny2:5m

It copies what real Ollama does where a residency tool can see it: keep_alive parsing (a re-made
Go ``time.ParseDuration``), JSON shapes and key order, status codes, Content-Type headers and
error texts (taken from exchanges with a real Ollama 0.24.0), and the scheduler: one load at a
time, keep_alive applied per request, expiry timers that start when a request ends, asynchronous
unloads, eviction by "shortest configured keep_alive first" (pins are NOT protected), reloads when
``num_ctx`` changes (which lose the pin), partial GPU offload, and aborting a load whose client
went away. All times are integer nanoseconds (``time.time_ns()``).

Public API
==========

``FakeModel(name, family="llama", capabilities=("completion",), context_length=512,
size=675_328, file_size=506_922, digest=<sha256 of the name>, parameter_size="124K",
quantization_level="unknown", format="gguf", embedding_length=64)``
    An installed model. ``size`` is the runtime size shown by ``/api/ps``; ``file_size`` the size
    in ``/api/tags``. ``short_name`` gives the canonical display name (``tiny:latest``).

``DEFAULT_MODELS``
    tiny, tiny2, tiny3 (llama, context 512), tiny-embed (bert, embedding only), llama3.2:latest
    (context 131072, ~3.4 GB), qwen2.5:14b (context 32768, ~10 GB), nomic-embed-text:latest
    (nomic-bert, embedding only), myns/coder:7b. The tiny models carry the digests and sizes of
    the real transcripts.

``FakeOllama(models=None, *, max_loaded=3, memory_budget=None, gpu_memory=0,
default_keep_alive="5m", default_num_ctx=4096, load_delay=0.05, unload_delay=0.02,
finish_delay=0.005, token_delay=0.002, version="0.24.0", utc_offset_minutes=0,
list_loading=False, ps_supported=True, host="127.0.0.1", port=0)``

    Lifecycle
        ``start() -> FakeOllama``, ``stop()``, ``restart(*, down_for=0.0)`` (same port), context
        manager; ``url`` (``"http://127.0.0.1:PORT"``), ``host``, ``port``, ``running``.
        ``stop()`` closes the listener (connection refused) and every open connection and drops
        every runner, as a real server restart does. ``reset()`` drops runners, faults, recorded
        requests and ``load_history`` while the server keeps running (for session fixtures).
    Observation
        ``requests: list[RecordedRequest]`` (method, path, json, time, query, body, headers) for
        every request received; ``clear_requests()``; ``requests_to(path, method=None)``.
        ``loaded() -> list[dict]``: snapshot of registered runners with keys name, model, digest,
        keep_alive_ns, expires_at (ns or None while the first request is in flight), in_use,
        num_ctx (requested), context_length, size, size_vram, state ("loading" | "ready" |
        "unloading"). ``loading() -> list[str]``: models whose load is in progress.
        ``load_history: list[str]``: short names of completed loads, in order.
        ``wait_idle(timeout=5)``: block until no request is queued for a load, no load or unload
        is in progress and every answered request has been accounted as finished; raises
        ``TimeoutError``.
    Set-up helpers
        ``preload(model, keep_alive=None, *, num_ctx=None, options=None)`` loads a model as a
        request would (blocking, honours eviction and load_delay), then ends that request.
        ``models`` lists the installed FakeModels.
        ``add_model(model)``, ``remove_model(name)`` change the installed list (a loaded model
        stays loaded, as with ``DELETE /api/delete``). Attributes such as ``max_loaded``,
        ``memory_budget``, ``gpu_memory``, ``token_delay``, ``list_loading`` may be changed at any
        time; ``set_default_keep_alive(value)`` re-parses like ``OLLAMA_KEEP_ALIVE``.
    Faults
        ``fail_next(path, status, error, times=1)``: the next N requests to path answer
        ``status`` with ``{"error": error}``.
        ``fail_load(model, error=..., status=500)``: every load of that model fails (after the
        load delay, nothing stays registered) until ``clear_faults()``.
        ``hang_next(path, seconds)``: the next request to path sleeps before it is handled.
        ``stream_error_next(error)``: the next streaming generate/chat sends one chunk, then an
        ``{"error": ...}`` line, with status 200.
        ``set_load_delay(seconds, model=None)``: global or per model. ``clear_faults()`` removes
        every fault (per-model load delays included).

Module helpers: ``parse_go_duration(s) -> int`` (ns; raises ``GoDurationError`` with Go's exact
text), ``keep_alive_from_json(value) -> int | None`` (the request field, as Ollama decodes it),
``env_keep_alive(value) -> int`` (``OLLAMA_KEEP_ALIVE`` rules), ``format_go_time(ns,
utc_offset_minutes=0)`` (RFC 3339 with nanoseconds like Go), ``parse_go_time(s) -> int``,
``canonical_name(s) -> str``, ``MAX_DURATION`` (forever = 2**63 - 1 ns), ``MIN_DURATION`` (what
an overflowing keep_alive number becomes), ``DEFAULT_LOAD_ERROR`` (``fail_load``'s text),
``main(argv)``.

Endpoints: ``GET|HEAD /``, ``GET|HEAD /api/version``, ``GET|HEAD /api/tags``, ``POST /api/show``,
``GET /api/ps``, ``POST /api/generate``, ``POST /api/chat``, ``POST /api/embed``,
``POST /api/embeddings``, ``DELETE /api/delete``, ``POST /v1/chat/completions`` (never carries a
keep_alive). Other paths answer gin's plain-text ``404 page not found``; a wrong method on a
known path answers ``405 method not allowed`` with an ``Allow`` header. On a loopback listener a
foreign ``Host`` header gets 403 with an empty body (``allowedHostsMiddleware``).

Deliberate simplifications (where the fake knowingly differs from Go):

- A request "finishes" ``finish_delay`` after its answer, which ``/api/ps`` can observe; but a
  later request's scheduling first processes the finish of every already-answered request, as
  Go does within microseconds, so back-to-back clients never see a stale "busy" runner.
- ``/api/show`` 404 echoes the name as sent (``model 'x' not found``), as real 0.24.0 does
  (transcript 27c) and current source does; the contract's ":latest" form was not reproduced.
- Ties in ``/api/ps`` order (same expiry second) keep registration order (Go: map order).
  Eviction ties break on the manifest digest (Go: blob path, effectively the same).
- ``memory_budget`` is a plain sum of runtime sizes; Go's 80 % GPU pre-flight estimate, OOM
  retries, health pings, num_parallel, the 512-request queue (503) and MLX loading are not
  modelled. Load-time options compared for reloads: num_ctx, num_batch, num_gpu (unless the new
  one is negative/absent), main_gpu, use_mmap, num_thread; ``num_gpu: 0`` means CPU only.
- Only ``think`` and ``tools`` capability checks exist besides completion; generated text,
  token counts, embeddings and the OpenAI-compatible shapes are stand-ins.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import decimal
import hashlib
import heapq
import http.server
import ipaddress
import itertools
import json
import math
import re
import select
import selectors
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_LOAD_ERROR",
    "DEFAULT_MODELS",
    "MAX_DURATION",
    "MIN_DURATION",
    "FakeModel",
    "FakeOllama",
    "GoDurationError",
    "RecordedRequest",
    "canonical_name",
    "env_keep_alive",
    "format_go_time",
    "keep_alive_from_json",
    "main",
    "parse_go_duration",
    "parse_go_time",
]

NS_PER_SECOND = 1_000_000_000
#: Go ``time.Duration(math.MaxInt64)``: what every negative keep_alive becomes ("forever").
MAX_DURATION = 2**63 - 1
#: What a float-to-int64 overflow yields on amd64 (huge keep_alive numbers).
MIN_DURATION = -(2**63)
_U64 = 2**64
_FIVE_MINUTES = 5 * 60 * NS_PER_SECOND
# Timers longer than this never fire within a test run; not scheduling them keeps the heap small.
_NEVER_NS = 100 * 365 * 24 * 3600 * NS_PER_SECOND

DEFAULT_LOAD_ERROR = (
    "llama runner process has terminated: error loading model: unable to allocate CPU buffer"
)


# --------------------------------------------------------------------------------------------
# keep_alive: Go time.ParseDuration and api.Duration.UnmarshalJSON
# --------------------------------------------------------------------------------------------


class GoDurationError(ValueError):
    """A duration Ollama rejects; ``str(error)`` is the exact Go error text."""


_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
}


def _time_quote(s: str) -> str:
    """The ``quote`` helper of Go's time package (non-ASCII and controls as \\x bytes)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if code >= 0x80 or code < 0x20:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def parse_go_duration(s: str) -> int:
    """Parse like Go's ``time.ParseDuration``; return nanoseconds (may be negative).

    >>> parse_go_duration("1h30m"), parse_go_duration("-0"), parse_go_duration("1.5s")
    (5400000000000, 0, 1500000000)
    """
    orig = s
    invalid = GoDurationError("time: invalid duration " + _time_quote(orig))
    total = 0
    neg = False
    if s and s[0] in "-+":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise invalid
    while s:
        if not (s[0] == "." or _is_digit(s[0])):
            raise invalid
        # leading integer
        before = len(s)
        i = 0
        v = 0
        while i < len(s) and _is_digit(s[i]):
            if v > (1 << 63) // 10:
                raise invalid
            v = v * 10 + ord(s[i]) - 48
            if v > 1 << 63:
                raise invalid
            i += 1
        s = s[i:]
        pre = before != len(s)
        # optional fraction
        post = False
        frac = 0
        scale = 1.0
        if s and s[0] == ".":
            s = s[1:]
            before = len(s)
            i = 0
            overflow = False
            while i < len(s) and _is_digit(s[i]):
                if not overflow:
                    if frac > ((1 << 63) - 1) // 10:
                        overflow = True
                    else:
                        y = frac * 10 + ord(s[i]) - 48
                        if y > 1 << 63:
                            overflow = True
                        else:
                            frac = y
                            scale *= 10
                i += 1
            s = s[i:]
            post = before != len(s)
        if not pre and not post:
            raise invalid
        # unit
        i = 0
        while i < len(s) and not (s[i] == "." or _is_digit(s[i])):
            i += 1
        if i == 0:
            raise GoDurationError("time: missing unit in duration " + _time_quote(orig))
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise GoDurationError(
                "time: unknown unit " + _time_quote(unit_name) + " in duration " + _time_quote(orig)
            )
        if v > (1 << 63) // unit:
            raise invalid
        v *= unit
        if frac > 0:
            v += int(float(frac) * (float(unit) / scale))
            if v > 1 << 63:
                raise invalid
        total += v
        if total > 1 << 63:
            raise invalid
    if neg:
        return -total
    if total > (1 << 63) - 1:
        raise invalid
    return total


def _f64_to_i64(x: float) -> int:
    """Go ``int64(x)`` on amd64: truncation, and 0x8000000000000000 when out of range."""
    if math.isnan(x) or x >= 2.0**63 or x < -(2.0**63):
        return MIN_DURATION
    return int(x)


def _wrap_i64(n: int) -> int:
    return (n + 2**63) % _U64 - 2**63


class _BigNumber:
    """A JSON number Go cannot hold in a float64 (kept as text for the error message)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def keep_alive_from_json(value: Any) -> int | None:
    """Decode a request's ``keep_alive`` like ``api.Duration.UnmarshalJSON``.

    Returns nanoseconds, or None when unset (absent or null). Numbers are float seconds, any
    negative value (number or duration string) is forever (``MAX_DURATION``), numbers too big for
    int64 nanoseconds wrap to a negative duration as on amd64. Raises ``GoDurationError`` with
    Ollama's error text.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise GoDurationError("Unsupported type: 'bool'")
    if isinstance(value, _BigNumber):
        raise GoDurationError(
            f"json: cannot unmarshal number {value.text} into Go value of type float64"
        )
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            raise GoDurationError(
                f"json: cannot unmarshal number {value} into Go value of type float64"
            ) from None
        if seconds < 0:
            return MAX_DURATION
        return _f64_to_i64(seconds * float(NS_PER_SECOND))
    if isinstance(value, str):
        d = parse_go_duration(value)
        return MAX_DURATION if d < 0 else d
    if isinstance(value, (list, tuple)):
        raise GoDurationError("Unsupported type: '[]interface {}'")
    if isinstance(value, dict):
        raise GoDurationError("Unsupported type: 'map[string]interface {}'")
    raise GoDurationError(f"Unsupported type: '{type(value).__name__}'")


def env_keep_alive(value: str | float | None) -> int:
    """The server default, parsed like ``OLLAMA_KEEP_ALIVE`` (``envconfig.KeepAlive``).

    Trimmed of spaces and quotes; empty -> 5m; a Go duration; else integer seconds; anything
    else silently 5m; negative -> forever. Python numbers are taken as seconds.
    """
    if value is None:
        return _FIVE_MINUTES
    if isinstance(value, bool):
        raise TypeError("keep_alive must be a string or a number")
    if isinstance(value, (int, float)):
        if value < 0:
            return MAX_DURATION
        return _f64_to_i64(float(value) * NS_PER_SECOND)
    text = value.strip().strip("\"'")
    result = _FIVE_MINUTES
    if text:
        try:
            result = parse_go_duration(text)
        except GoDurationError:
            if re.fullmatch(r"[+-]?[0-9]+", text):
                n = int(text)
                if -(2**63) <= n < 2**63:
                    result = _wrap_i64(n * NS_PER_SECOND)
    return MAX_DURATION if result < 0 else result


# --------------------------------------------------------------------------------------------
# Time formatting (Go time.RFC3339Nano)
# --------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)


def format_go_time(ns: int, utc_offset_minutes: int = 0) -> str:
    """Format Unix nanoseconds like Go ``time.RFC3339Nano`` in a fixed UTC offset.

    >>> format_go_time(10_123_000_000), format_go_time(0, 120), format_go_time(5, -420)
    ('1970-01-01T00:00:10.123Z', '1970-01-01T02:00:00+02:00', '1969-12-31T17:00:00.000000005-07:00')
    """
    sec, frac = divmod(ns, NS_PER_SECOND)
    t = _EPOCH + timedelta(seconds=sec + utc_offset_minutes * 60)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    if utc_offset_minutes == 0:
        return text + "Z"
    sign = "+" if utc_offset_minutes > 0 else "-"
    off = abs(utc_offset_minutes)
    return f"{text}{sign}{off // 60:02d}:{off % 60:02d}"


_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z"
)


def parse_go_time(text: str) -> int:
    """Parse an RFC 3339 timestamp (as Ollama writes them) into Unix nanoseconds."""
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = int((m.group(7) or "").ljust(9, "0"))
    zone = m.group(8)
    offset = 0
    if zone != "Z":
        offset = int(zone[1:3]) * 60 + int(zone[4:6])
        if zone[0] == "-":
            offset = -offset
    local = datetime(year, month, day, hour, minute, second)
    delta = local - _EPOCH
    seconds = delta.days * 86400 + delta.seconds - offset * 60
    return seconds * NS_PER_SECOND + frac


def _now_utc() -> str:
    return format_go_time(time.time_ns(), 0)


# --------------------------------------------------------------------------------------------
# Model names (types/model/name.go)
# --------------------------------------------------------------------------------------------

_DEFAULT_HOST = "registry.ollama.ai"
_DEFAULT_NAMESPACE = "library"
_DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"


@dataclass(frozen=True)
class _Name:
    host: str
    namespace: str
    model: str
    tag: str

    def valid(self) -> bool:
        return (
            _valid_part("host", self.host)
            and _valid_part("namespace", self.namespace)
            and _valid_part("model", self.model)
            and _valid_part("tag", self.tag)
        )

    def key(self) -> tuple[str, str, str, str]:
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def short(self) -> str:
        """``DisplayShortest``: drop the default host and namespace, keep the tag."""
        prefix = ""
        if self.host.lower() != _DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != _DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def _cut_last(s: str, sep: str) -> tuple[str, str] | None:
    i = s.rfind(sep)
    if i < 0:
        return None
    return (s[:i] or _MISSING, s[i + len(sep) :] or _MISSING)


def _parse_name(s: str) -> _Name:
    """``model.ParseName``: split host/namespace/model:tag and fill the defaults."""
    host = namespace = tag = ""
    if s.rfind(":") > s.rfind("/"):
        cut = _cut_last(s, ":")
        assert cut is not None
        s, tag = cut
    cut = _cut_last(s, "/")
    if cut is None:
        model = s
    else:
        s, model = cut
        cut = _cut_last(s, "/")
        if cut is None:
            namespace = s
        else:
            s, namespace = cut
            scheme, sep, rest = s.partition("://")
            host = rest if sep else scheme
    return _Name(host or _DEFAULT_HOST, namespace or _DEFAULT_NAMESPACE, model, tag or _DEFAULT_TAG)


def _alnum_or_underscore(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z") or _is_digit(ch)


def _valid_part(kind: str, s: str) -> bool:
    limit = 350 if kind == "host" else 80
    if not 1 <= len(s.encode()) <= limit:
        return False
    for i, ch in enumerate(s):
        if i == 0:
            if not _alnum_or_underscore(ch):
                return False
            continue
        if ch in "_-":
            continue
        if ch == ".":
            if kind == "namespace":
                return False
            continue
        if ch == ":":
            if kind != "host":
                return False
            continue
        if not _alnum_or_underscore(ch):
            return False
    return True


def canonical_name(name: str) -> str:
    """The name Ollama displays for ``name`` (``tiny`` -> ``tiny:latest``); ValueError if invalid.

    >>> canonical_name("registry.ollama.ai/library/tiny"), canonical_name("myns/coder:7b")
    ('tiny:latest', 'myns/coder:7b')
    """
    parsed = _parse_name(name)
    if not parsed.valid():
        raise ValueError(f"invalid model name: {name!r}")
    return parsed.short()


# --------------------------------------------------------------------------------------------
# JSON the Go way
# --------------------------------------------------------------------------------------------

_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).translate(_HTML_ESCAPES)


def _go_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {f}")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    a = abs(f)
    text = repr(f)
    if a < 1e-6 or a >= 1e21:
        mantissa, _, exp = text.partition("e")
        if not exp:
            mantissa, _, exp = f"{f:e}".partition("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{sign}{digits}"
    text = format(decimal.Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _go_json(v: Any) -> str:
    """Serialise like Go's ``encoding/json`` (compact, HTML-escaped, dict order kept)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return _go_str(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{_go_str(str(k))}:{_go_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_go_json(x) for x in v) + "]"
    raise TypeError(f"cannot serialise {type(v).__name__}")


def _dumps(v: Any) -> bytes:
    return _go_json(v).encode("utf-8", "replace")


class _JSONConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _JSONConstant(name)


def _parse_float(text: str) -> Any:
    value = float(text)
    return _BigNumber(text) if math.isinf(value) else value


def _parse_int(text: str) -> Any:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts by default
        return _BigNumber(text)
    return _BigNumber(text) if abs(value) >= 2**1024 else value


_EOF = object()


def _quote_char(ch: str) -> str:
    """Go encoding/json ``quoteChar`` (used in syntax errors)."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    if ord(ch) >= 0x80:
        return f"'\\x{ch.encode('utf-8', 'surrogatepass')[0]:02x}'"
    return "'" + _go_quote(ch)[1:-1] + "'"


def _innermost_container(text: str, pos: int) -> str:
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _syntax_error(text: str, err: json.JSONDecodeError) -> str:
    pos = err.pos
    msg = err.msg
    rest = text[pos:].strip()
    if pos >= len(text) or msg.startswith("Unterminated string"):
        return "unexpected EOF"
    if (
        msg.startswith("Expecting value")
        and rest
        and (any(word.startswith(rest) for word in ("true", "false", "null")) or rest == "-")
    ):
        return "unexpected EOF"
    ch = text[pos]
    if msg.startswith("Expecting property name"):
        where = "looking for beginning of object key string"
    elif msg.startswith("Expecting ':'"):
        where = "after object key"
    elif msg.startswith("Expecting ','"):
        inner = _innermost_container(text, pos)
        where = "after array element" if inner == "[" else "after object key:value pair"
    elif msg.startswith("Invalid control character"):
        where = "in string literal"
    elif "escape" in msg:
        if pos + 1 < len(text):
            ch = text[pos + 1]
        where = "in string escape code"
    else:
        where = "looking for beginning of value"
    return f"invalid character {_quote_char(ch)} {where}"


def _decode_go_json(body: bytes) -> tuple[Any, str | None]:
    """Decode the first JSON value like Go's ``json.Decoder.Decode`` (trailing data ignored).

    Returns ``(_EOF, None)`` for an empty body, ``(value, None)`` or ``(None, go_error_text)``.
    """
    text = body.decode("utf-8", "replace")
    i = 0
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i == len(text):
        return _EOF, None
    decoder = json.JSONDecoder(
        parse_float=_parse_float, parse_int=_parse_int, parse_constant=_reject_constant
    )
    try:
        value, _ = decoder.raw_decode(text, i)
    except _JSONConstant as exc:
        return None, f"invalid character {_quote_char(str(exc)[0])} looking for beginning of value"
    except json.JSONDecodeError as exc:
        return None, _syntax_error(text, exc)
    return value, None


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (int, float, _BigNumber)):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


def _find_big_number(v: Any) -> _BigNumber | None:
    if isinstance(v, _BigNumber):
        return v
    items: Iterable[Any] = ()
    if isinstance(v, dict):
        items = v.values()
    elif isinstance(v, list):
        items = v
    for x in items:
        found = _find_big_number(x)
        if found is not None:
            return found
    return None


# field name -> (kind, Go type for error messages)
_Fields = dict[str, tuple[str, str]]
_STR = ("string", "string")
_BOOL = ("bool", "bool")
_INT = ("int", "int")
_MAP = ("object", "map[string]interface {}")
_ANY = ("any", "")
_DURATION = ("duration", "")

_GENERATE_FIELDS: _Fields = {
    "model": _STR,
    "prompt": _STR,
    "suffix": _STR,
    "system": _STR,
    "template": _STR,
    "context": ("array", "[]int"),
    "stream": _BOOL,
    "raw": _BOOL,
    "format": _ANY,
    "keep_alive": _DURATION,
    "images": ("array", "[]api.ImageData"),
    "options": _MAP,
    "think": _ANY,
    "truncate": _BOOL,
    "shift": _BOOL,
    "logprobs": _BOOL,
    "top_logprobs": _INT,
}
_CHAT_FIELDS: _Fields = {
    "model": _STR,
    "messages": ("array", "[]api.Message"),
    "stream": _BOOL,
    "format": _ANY,
    "keep_alive": _DURATION,
    "tools": ("array", "api.Tools"),
    "options": _MAP,
    "think": _ANY,
    "truncate": _BOOL,
    "shift": _BOOL,
    "logprobs": _BOOL,
    "top_logprobs": _INT,
}
_EMBED_FIELDS: _Fields = {
    "model": _STR,
    "input": _ANY,
    "keep_alive": _DURATION,
    "truncate": _BOOL,
    "dimensions": _INT,
    "options": _MAP,
}
_EMBEDDINGS_FIELDS: _Fields = {
    "model": _STR,
    "prompt": _STR,
    "keep_alive": _DURATION,
    "options": _MAP,
}
_SHOW_FIELDS: _Fields = {
    "model": _STR,
    "name": _STR,
    "system": _STR,
    "template": _STR,
    "verbose": _BOOL,
    "options": _MAP,
}
_DELETE_FIELDS: _Fields = {"model": _STR, "name": _STR}


def _kind_ok(kind: str, v: Any) -> bool:
    if kind == "string":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "object":
        return isinstance(v, dict)
    if kind == "array":
        return isinstance(v, list)
    return True


def _bind(value: Any, struct: str, fields: _Fields) -> tuple[dict[str, Any], str | None]:
    """Go json.Unmarshal into a request struct: case-insensitive keys, null = unset,
    keep_alive errors returned at once, the first type mismatch reported at the end."""
    out: dict[str, Any] = {}
    if value is None:
        return out, None
    if not isinstance(value, dict):
        return out, f"json: cannot unmarshal {_json_kind(value)} into Go value of type api.{struct}"
    type_error: str | None = None
    lowered = {name.lower(): name for name in fields}
    for key, v in value.items():
        name = key if key in fields else lowered.get(key.lower())
        if name is None:
            continue
        kind, go_type = fields[name]
        if kind == "duration":
            try:
                out[name] = keep_alive_from_json(v)
            except GoDurationError as exc:
                return {}, str(exc)
            continue
        if v is None:
            out.pop(name, None)
            continue
        if not _kind_ok(kind, v):
            if type_error is None:
                type_error = (
                    f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                    f"{struct}.{key} of type {go_type}"
                )
            continue
        big = _find_big_number(v)
        if big is not None:
            if type_error is None:
                type_error = (
                    f"json: cannot unmarshal number {big.text} into Go value of type float64"
                )
            continue
        out[name] = v
    return out, type_error


def _go_quote(s: str) -> str:
    """Go ``%q`` / ``strconv.Quote`` for the texts used here."""
    out = ['"']
    specials = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    specials["\v"] = "\\v"
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in specials:
            out.append(specials[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class FakeModel:
    """An installed model. ``size`` is the runtime size (``/api/ps``), ``file_size`` the size
    on disk (``/api/tags``). ``digest`` defaults to a sha256 derived from the name."""

    name: str
    family: str = "llama"
    capabilities: tuple[str, ...] = ("completion",)
    context_length: int = 512
    size: int = 675_328
    file_size: int = 506_922
    digest: str = ""
    parameter_size: str = "124K"
    quantization_level: str = "unknown"
    format: str = "gguf"
    embedding_length: int = 64
    _parsed: _Name = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = _parse_name(self.name)
        if not parsed.valid():
            raise ValueError(f"invalid model name: {self.name!r}")
        self._parsed = parsed
        self.capabilities = tuple(self.capabilities)
        if not self.digest:
            self.digest = hashlib.sha256(f"fakeollama:{parsed.short()}".encode()).hexdigest()

    @property
    def short_name(self) -> str:
        return self._parsed.short()

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self._parsed.key()

    @property
    def full_name(self) -> str:
        return self._parsed.full()


DEFAULT_MODELS: list[FakeModel] = [
    FakeModel(
        "tiny:latest",
        digest="a09825f870c31be8ce11111462e5b72fcae75284a25649bea6220a647bd9cba0",
    ),
    FakeModel(
        "tiny2:latest",
        digest="792e1977a21ce3ee08e30b6f11fadffe2d8735da3ba25a8a1abd3d1ab278cf9a",
    ),
    FakeModel(
        "tiny3:latest",
        digest="31b9425a82d85d8fec458ca03fc6a5335b819c6e49d51a777edc628723dd862a",
    ),
    FakeModel(
        "tiny-embed:latest",
        family="bert",
        capabilities=("embedding",),
        size=5_298_688,
        file_size=429_352,
        digest="d476eaee16a343538623457d6d4180aa57e15b831233038d72f08a37e13905c0",
        parameter_size="106K",
    ),
    FakeModel(
        "llama3.2:latest",
        capabilities=("completion", "tools"),
        context_length=131_072,
        size=3_442_000_000,
        file_size=2_019_393_189,
        parameter_size="3.2B",
        quantization_level="Q4_K_M",
        embedding_length=3072,
    ),
    FakeModel(
        "qwen2.5:14b",
        family="qwen2",
        capabilities=("completion", "tools"),
        context_length=32_768,
        size=10_180_000_000,
        file_size=8_988_124_069,
        parameter_size="14.8B",
        quantization_level="Q4_K_M",
        embedding_length=5120,
    ),
    FakeModel(
        "nomic-embed-text:latest",
        family="nomic-bert",
        capabilities=("embedding",),
        context_length=2048,
        size=577_000_000,
        file_size=274_302_450,
        parameter_size="137M",
        quantization_level="F16",
        embedding_length=768,
    ),
    FakeModel(
        "myns/coder:7b",
        family="qwen2",
        capabilities=("completion", "tools", "insert"),
        context_length=32_768,
        size=5_900_000_000,
        file_size=4_683_087_332,
        parameter_size="7.6B",
        quantization_level="Q4_K_M",
        embedding_length=3584,
    ),
]


def _parameter_count(size: str) -> int:
    m = re.fullmatch(r"([0-9.]+)\s*([KMBT]?)", size.strip(), re.IGNORECASE)
    if not m:
        return 0
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


# --------------------------------------------------------------------------------------------
# Server state
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received. ``json`` is the decoded body or None."""

    method: str
    path: str
    json: Any
    time: float
    query: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class _Runner:
    model: FakeModel
    epoch: int
    duration: int
    load_opts: dict[str, Any]
    context_length: int
    size: int
    size_vram: int
    state: str = "loading"
    refcount: int = 1
    expires_at: int | None = None
    timer_token: int = 0
    expire_pending: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.model.key


class _Canceled(Exception):
    """The client went away or the server stopped: there is nobody left to answer."""


class _ScheduleError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Ctx:
    """Per-request view of the server generation it arrived in."""

    epoch: int
    stop: threading.Event
    load_lock: threading.Lock
    sock: socket.socket | None = None

    def cancelled(self) -> bool:
        return self.stop.is_set() or (self.sock is not None and _peer_closed(self.sock))


def _peer_closed(sock: socket.socket) -> bool:
    """True once the client closed its end (what makes Go cancel the request context)."""
    dontwait = getattr(socket, "MSG_DONTWAIT", None)
    try:
        if dontwait is None:  # Windows: ask select first so that recv cannot block
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
        data = sock.recv(1, socket.MSG_PEEK | (dontwait or 0))
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True
    return data == b""


_INT_OPTIONS = {
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "num_predict",
    "num_keep",
    "seed",
    "top_k",
    "repeat_last_n",
}
_FLOAT_OPTIONS = {
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
}
_BOOL_OPTIONS = {"use_mmap", "numa", "penalize_newline"}

# tokens of the fake generation (with their leading spaces, as real tokenizers produce them)
_WORDS = (" The", " model", " is", " resident", ",", " warm", " and", " ready", ".")

_REASONS = {499: "status code 499"}
_MODEL_PROBLEMS = {"empty": "model is required", "invalid": "invalid model name"}

_ROUTE_METHODS: dict[str, tuple[str, ...]] = {
    "/": ("HEAD", "GET"),
    "/api/version": ("HEAD", "GET"),
    "/api/tags": ("HEAD", "GET"),
    "/api/show": ("POST",),
    "/api/delete": ("DELETE",),
    "/api/ps": ("GET",),
    "/api/generate": ("POST",),
    "/api/chat": ("POST",),
    "/api/embed": ("POST",),
    "/api/embeddings": ("POST",),
    "/v1/chat/completions": ("POST",),
}

_GO_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


class FakeOllama:
    """A fake Ollama server on a loopback port; see the module docstring for the API."""

    def __init__(
        self,
        models: Iterable[FakeModel | str] | None = None,
        *,
        max_loaded: int = 3,
        memory_budget: int | None = None,
        gpu_memory: int = 0,
        default_keep_alive: str | float | None = "5m",
        default_num_ctx: int = 4096,
        load_delay: float = 0.05,
        unload_delay: float = 0.02,
        finish_delay: float = 0.005,
        token_delay: float = 0.002,
        version: str = "0.24.0",
        utc_offset_minutes: int = 0,
        list_loading: bool = False,
        ps_supported: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.max_loaded = max_loaded
        self.memory_budget = memory_budget
        self.gpu_memory = gpu_memory
        self.default_keep_alive_ns = env_keep_alive(default_keep_alive)
        self.default_num_ctx = default_num_ctx
        self.load_delay = load_delay
        self.unload_delay = unload_delay
        self.finish_delay = finish_delay
        self.token_delay = token_delay
        self.version = version
        self.utc_offset_minutes = utc_offset_minutes
        self.list_loading = list_loading
        self.ps_supported = ps_supported
        self.host = host
        self.port = port

        self._cond = threading.Condition(threading.RLock())
        self._models: dict[tuple[str, str, str, str], FakeModel] = {}
        self._modified_at: dict[tuple[str, str, str, str], int] = {}
        self._created_ns = time.time_ns()
        for m in DEFAULT_MODELS if models is None else models:
            self.add_model(m)

        self.requests: list[RecordedRequest] = []
        self.load_history: list[str] = []

        self._epoch = 0
        self._runners: dict[tuple[str, str, str, str], _Runner] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._unload_seq = 0
        self._pending = 0
        self._loading: list[str] = []
        self._finishes: dict[int, _Runner] = {}
        self._stop_event = threading.Event()
        self._stop_event.set()
        self._load_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []

        self._fail_next: list[list[Any]] = []
        self._fail_load: dict[tuple[str, str, str, str], tuple[int, str]] = {}
        self._hang_next: list[tuple[str, float]] = []
        self._stream_errors: list[str] = []
        self._load_delays: dict[tuple[str, str, str, str], float] = {}

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> FakeOllama:
        """Bind (port 0 picks a free port, kept across restarts) and serve in a thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeOllama is already running")
        httpd = self._bind()
        self.port = httpd.server_address[1]
        with self._cond:
            self._epoch += 1
            self._reset_state_locked()
            self._stop_event = threading.Event()
            self._load_lock = threading.Lock()
            epoch, stop = self._epoch, self._stop_event
        self._httpd = httpd
        serve = threading.Thread(
            target=httpd.serve,
            name=f"fakeollama-http-{self.port}",
            daemon=True,
        )
        reaper = threading.Thread(
            target=self._reaper_loop,
            args=(epoch, stop),
            name=f"fakeollama-sched-{self.port}",
            daemon=True,
        )
        self._threads = [serve, reaper]
        serve.start()
        reaper.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; every runner is gone (nothing persists)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._httpd = None
        with self._cond:
            self._epoch += 1
            self._reset_state_locked()
            self._stop_event.set()
            self._cond.notify_all()
        httpd.stop_serving()
        httpd.server_close()
        httpd.close_all_connections()
        for t in self._threads:
            t.join(timeout=2)
        self._threads = []

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds (connection refused), start on the same port."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def reset(self) -> None:
        """Drop every runner, fault, recorded request and the load history; keep serving."""
        with self._cond:
            self._epoch += 1
            self._reset_state_locked()
            self._stop_event.set()
            self._stop_event = threading.Event()
            self._load_lock = threading.Lock()
            epoch, stop = self._epoch, self._stop_event
            self.requests.clear()
            self.load_history.clear()
            self._clear_faults_locked()
            self._cond.notify_all()
        if self._httpd is not None:
            reaper = threading.Thread(
                target=self._reaper_loop,
                args=(epoch, stop),
                name=f"fakeollama-sched-{self.port}",
                daemon=True,
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [reaper]
            reaper.start()

    def __enter__(self) -> FakeOllama:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> _HTTPServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        deadline = time.monotonic() + 3
        while True:
            try:
                return _HTTPServer((self.host, self.port), _Handler, self, family)
            except OSError as exc:
                # a restart right after stop() can race the old socket's teardown
                if self.port == 0 or time.monotonic() > deadline or exc.errno not in (98, 48):
                    raise
                time.sleep(0.02)

    def _reset_state_locked(self) -> None:
        self._runners = {}
        self._events = []
        self._pending = 0
        self._loading = []
        self._finishes = {}

    # ---------------------------------------------------------------- models

    def add_model(self, model: FakeModel | str) -> FakeModel:
        """Install a model (a name gets the FakeModel defaults); returns the stored copy."""
        m = FakeModel(model) if isinstance(model, str) else dataclasses.replace(model)
        with self._cond:
            if m.key not in self._modified_at:
                # distinct seconds, newest first in list order (tags sort by modified_at)
                self._modified_at[m.key] = self._created_ns - len(self._modified_at) * NS_PER_SECOND
            self._models[m.key] = m
        return m

    def remove_model(self, name: str) -> None:
        """Uninstall a model; a loaded runner of it stays loaded (like the delete API)."""
        with self._cond:
            self._models.pop(_parse_name(name).key(), None)

    @property
    def models(self) -> list[FakeModel]:
        with self._cond:
            return list(self._models.values())

    def _model(self, name: str) -> FakeModel:
        parsed = _parse_name(name)
        if not parsed.valid():
            raise ValueError(f"invalid model name: {name!r}")
        with self._cond:
            m = self._models.get(parsed.key())
        if m is None:
            raise KeyError(f"model {name!r} is not installed in the fake")
        return m

    # ---------------------------------------------------------------- observation

    def clear_requests(self) -> None:
        with self._cond:
            self.requests.clear()

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._cond:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method.upper())
            ]

    def loaded(self) -> list[dict[str, Any]]:
        """Snapshot of the registered runners, in registration order."""
        with self._cond:
            return [
                {
                    "name": r.model.short_name,
                    "model": r.model.short_name,
                    "digest": r.model.digest,
                    "keep_alive_ns": r.duration,
                    "expires_at": r.expires_at,
                    "in_use": r.refcount,
                    "num_ctx": r.load_opts["num_ctx"],
                    "context_length": r.context_length,
                    "size": r.size,
                    "size_vram": r.size_vram,
                    "state": r.state,
                }
                for r in self._runners.values()
            ]

    def loading(self) -> list[str]:
        with self._cond:
            return list(self._loading)

    def wait_idle(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (
                self._pending
                or self._loading
                or self._finishes
                or any(r.state == "unloading" for r in self._runners.values())
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"fake Ollama not idle after {timeout}s: pending={self._pending} "
                        f"loading={self._loading} unfinished={len(self._finishes)} "
                        f"runners={self.loaded()}"
                    )
                self._cond.wait(min(remaining, 0.05))

    # ---------------------------------------------------------------- configuration & faults

    def set_default_keep_alive(self, value: str | float | None) -> None:
        self.default_keep_alive_ns = env_keep_alive(value)

    def fail_next(self, path: str, status: int, error: str, times: int = 1) -> None:
        with self._cond:
            self._fail_next.append([path, status, error, times])

    def fail_load(self, model: str, error: str = DEFAULT_LOAD_ERROR, status: int = 500) -> None:
        key = _parse_name(model).key()
        with self._cond:
            self._fail_load[key] = (status, error)

    def hang_next(self, path: str, seconds: float) -> None:
        with self._cond:
            self._hang_next.append((path, seconds))

    def stream_error_next(self, error: str) -> None:
        with self._cond:
            self._stream_errors.append(error)

    def set_load_delay(self, seconds: float, model: str | None = None) -> None:
        with self._cond:
            if model is None:
                self.load_delay = seconds
            else:
                self._load_delays[_parse_name(model).key()] = seconds

    def clear_faults(self) -> None:
        with self._cond:
            self._clear_faults_locked()

    def _clear_faults_locked(self) -> None:
        self._fail_next.clear()
        self._fail_load.clear()
        self._hang_next.clear()
        self._stream_errors.clear()
        self._load_delays.clear()

    def _take_fail(self, path: str) -> tuple[int, str] | None:
        with self._cond:
            for entry in self._fail_next:
                if entry[0] == path:
                    entry[3] -= 1
                    if entry[3] <= 0:
                        self._fail_next.remove(entry)
                    return entry[1], entry[2]
        return None

    def _take_hang(self, path: str) -> float | None:
        with self._cond:
            for i, (p, seconds) in enumerate(self._hang_next):
                if p == path:
                    del self._hang_next[i]
                    return seconds
        return None

    # ---------------------------------------------------------------- set-up helpers

    def preload(
        self,
        model: str,
        keep_alive: Any = None,
        *,
        num_ctx: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        """Load ``model`` as a request with this keep_alive (JSON-style value) would, then end
        that request. Blocks for the load (and any eviction)."""
        if self._httpd is None:
            raise RuntimeError("start the fake before preloading")
        m = self._model(model)
        ka = keep_alive_from_json(keep_alive)
        raw = dict(options or {})
        if num_ctx is not None:
            raw["num_ctx"] = num_ctx
        opts, err = self._parse_options(raw)
        if err:
            raise ValueError(err)
        with self._cond:
            ctx = _Ctx(self._epoch, self._stop_event, self._load_lock)
        try:
            runner = self._get_runner(ctx, m, ka, opts)
        except _ScheduleError as exc:
            raise RuntimeError(f"preload of {model} failed: {exc.message}") from None
        with self._cond:
            self._finish(runner)

    # ---------------------------------------------------------------- scheduler

    def _schedule(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (time.monotonic() + delay, next(self._seq), fn))
        self._cond.notify_all()

    def _reaper_loop(self, epoch: int, stop: threading.Event) -> None:
        """Runs timers, request-finished events and unload completions (Go's processCompleted)."""
        with self._cond:
            while self._epoch == epoch and not stop.is_set():
                events = self._events
                now = time.monotonic()
                if events and events[0][0] <= now:
                    _, _, fn = heapq.heappop(events)
                    try:
                        fn()
                    except Exception:  # a bug in the fake must not kill the scheduler
                        traceback.print_exc()
                    self._cond.notify_all()
                    continue
                timeout = min(events[0][0] - now, 0.5) if events else 0.5
                self._cond.wait(timeout)

    def _check_epoch(self, ctx: _Ctx) -> None:
        if ctx.epoch != self._epoch:
            raise _Canceled()

    def _stop_timer(self, r: _Runner) -> None:
        r.timer_token += 1

    def _start_timer(self, r: _Runner) -> None:
        r.timer_token += 1
        token = r.timer_token
        if 0 < r.duration < _NEVER_NS:
            self._schedule(r.duration / NS_PER_SECOND, lambda: self._timer_fired(r, token))

    def _timer_fired(self, r: _Runner, token: int) -> None:
        if r.epoch != self._epoch or r.timer_token != token:
            return
        r.timer_token += 1
        self._expire(r)

    def _use_loaded(self, r: _Runner, keep_alive: int | None) -> None:
        """Go ``useLoadedRunner``: in use, timer stopped, duration replaced only if given."""
        r.refcount += 1
        self._stop_timer(r)
        if keep_alive is not None:
            r.duration = keep_alive

    def _finish(self, r: _Runner) -> None:
        """A request's context ended (Go's finishedReqCh handler)."""
        if r.epoch != self._epoch or self._runners.get(r.key) is not r:
            return
        r.refcount -= 1
        if r.refcount > 0:
            return
        if r.duration <= 0:
            self._stop_timer(r)
            self._expire(r)
        else:
            self._start_timer(r)
            r.expires_at = time.time_ns() + r.duration
            if r.expire_pending:
                self._expire(r)

    def _expire(self, r: _Runner) -> None:
        """Go's expiredCh handler: unload once idle; the entry goes after ``unload_delay``."""
        if r.state == "unloading":
            return
        if r.refcount > 0:
            r.expire_pending = True
            return
        r.state = "unloading"
        self._stop_timer(r)
        self._schedule(self.unload_delay, lambda: self._remove(r))

    def _remove(self, r: _Runner) -> None:
        if self._runners.get(r.key) is r:
            del self._runners[r.key]
            self._unload_seq += 1

    def _expire_runner(self, ctx: _Ctx, m: FakeModel) -> None:
        """Go ``expireRunner`` (the keep_alive 0 shortcut)."""
        with self._cond:
            self._check_epoch(ctx)
            self._flush_finishes()
            r = self._runners.get(m.key)
            while r is not None and r.state == "loading":
                # a listed loading runner holds its lock until ready (older engines / MLX)
                self._cond.wait(0.05)
                self._check_epoch(ctx)
                r = self._runners.get(m.key)
            if r is None:
                return
            r.expires_at = time.time_ns()
            self._stop_timer(r)
            r.duration = 0
            if r.refcount <= 0:
                self._expire(r)

    def _needs_reload(self, r: _Runner, opts: dict[str, Any]) -> bool:
        old = r.load_opts
        if old["num_ctx"] != opts["num_ctx"]:
            return True
        new_gpu = opts["num_gpu"]
        if new_gpu is not None and new_gpu >= 0 and new_gpu != old["num_gpu"]:
            return True
        return any(old[k] != opts[k] for k in ("num_batch", "main_gpu", "use_mmap", "num_thread"))

    def _find_runner_to_unload(self) -> _Runner:
        """Go ``findRunnerToUnload``: shortest configured keep_alive first (unsigned, so forever
        and negatives last), ties by digest; the first idle one, else the first."""
        candidates = sorted(
            self._runners.values(), key=lambda r: (r.duration % _U64, r.model.digest)
        )
        for r in candidates:
            if r.refcount <= 0 and r.state == "ready":
                return r
        return candidates[0]

    def _over_capacity(self, m: FakeModel) -> bool:
        runners = self._runners
        if not runners:
            return False
        if self.max_loaded > 0 and len(runners) >= self.max_loaded:
            return True
        if self.memory_budget is not None:
            return sum(r.size for r in runners.values()) + m.size > self.memory_budget
        return False

    def _get_runner(
        self, ctx: _Ctx, m: FakeModel, keep_alive: int | None, opts: dict[str, Any]
    ) -> _Runner:
        with self._cond:
            self._check_epoch(ctx)
            self._flush_finishes()
            r = self._runners.get(m.key)
            if r is not None and r.state == "ready" and not self._needs_reload(r, opts):
                self._use_loaded(r, keep_alive)
                return r
            self._pending += 1
        try:
            return self._process_pending(ctx, m, keep_alive, opts)
        finally:
            with self._cond:
                if ctx.epoch == self._epoch:
                    self._pending -= 1
                self._cond.notify_all()

    def _process_pending(
        self, ctx: _Ctx, m: FakeModel, keep_alive: int | None, opts: dict[str, Any]
    ) -> _Runner:
        """Go ``processPending`` for one request: one at a time, evict until it fits, load."""
        lock = ctx.load_lock
        while not lock.acquire(timeout=0.01):
            if ctx.stop.is_set():
                raise _Canceled()
        try:
            if ctx.cancelled():  # Go skips a queued request whose context is done
                raise _Canceled()
            while True:
                with self._cond:
                    self._check_epoch(ctx)
                    self._flush_finishes()
                    r = self._runners.get(m.key)
                    victim: _Runner | None = None
                    wait = False
                    if r is not None:
                        if r.state == "ready" and not self._needs_reload(r, opts):
                            self._use_loaded(r, keep_alive)
                            return r
                        if r.state == "ready":
                            victim = r  # options changed: reload
                        else:
                            wait = True
                    elif self._over_capacity(m):
                        if any(x.state == "unloading" for x in self._runners.values()):
                            wait = True  # an unload already under way frees the room
                        else:
                            victim = self._find_runner_to_unload()
                    if victim is None and not wait:
                        break
                    seq = self._unload_seq
                    if victim is not None:
                        # expires_at stays as it is: a pinned victim keeps showing its far date
                        self._stop_timer(victim)
                        victim.duration = 0
                        if victim.refcount <= 0:
                            self._expire(victim)
                    while self._unload_seq == seq:
                        self._check_epoch(ctx)
                        self._cond.wait(0.05)
            if ctx.cancelled():
                raise _Canceled()
            return self._load(ctx, m, keep_alive, opts)
        finally:
            lock.release()

    def _load(
        self, ctx: _Ctx, m: FakeModel, keep_alive: int | None, opts: dict[str, Any]
    ) -> _Runner:
        with self._cond:
            self._check_epoch(ctx)
            used_vram = sum(r.size_vram for r in self._runners.values())
            free_vram = max(0, self.gpu_memory - used_vram)
            runner = _Runner(
                model=m,
                epoch=ctx.epoch,
                duration=self.default_keep_alive_ns if keep_alive is None else keep_alive,
                load_opts=dict(opts),
                context_length=min(opts["num_ctx"], m.context_length),
                size=m.size,
                size_vram=0 if opts["num_gpu"] == 0 else min(m.size, free_vram),
            )
            if self.list_loading:
                self._runners[m.key] = runner
            self._loading.append(m.short_name)
            delay = self._load_delays.get(m.key, self.load_delay)
        ok = False
        try:
            deadline = time.monotonic() + delay
            while True:
                if ctx.cancelled():  # "client connection closed before ... aborting load"
                    raise _Canceled()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ctx.stop.wait(min(remaining, 0.005))
            with self._cond:
                self._check_epoch(ctx)
                fault = self._fail_load.get(m.key)
                if fault is not None:
                    raise _ScheduleError(*fault)
                runner.state = "ready"
                self._runners[m.key] = runner
                self.load_history.append(m.short_name)
                ok = True
                return runner
        finally:
            with self._cond:
                if ctx.epoch == self._epoch:
                    if m.short_name in self._loading:
                        self._loading.remove(m.short_name)
                    if not ok and self._runners.get(m.key) is runner:
                        del self._runners[m.key]
                        self._unload_seq += 1
                self._cond.notify_all()

    def _register_finish(self, r: _Runner) -> None:
        """The request holding ``r`` has been answered: its context ends ``finish_delay``
        later (Go updates expires_at just after answering)."""
        with self._cond:
            if r.epoch != self._epoch:
                return
            token = next(self._seq)
            self._finishes[token] = r

            def fire() -> None:
                if self._finishes.pop(token, None) is not None:
                    self._finish(r)

            self._schedule(self.finish_delay, fire)

    def _flush_finishes(self) -> None:
        """Process the finish of every request already answered. Go handles that event within
        microseconds, long before a client's next request reaches the scheduler, so scheduling
        decisions must not see those requests as still running."""
        while self._finishes:
            token = next(iter(self._finishes))
            self._finish(self._finishes.pop(token))

    def _mark_answered(self, h: _Handler) -> None:
        """Called just before a request's last bytes go out, so that no client can see the
        answer before the finish is registered (``wait_idle`` relies on it)."""
        r = h.fake_runner
        if r is not None and not h.fake_answered:
            h.fake_answered = True
            self._register_finish(r)

    def _schedule_finish(self, ctx: _Ctx, h: _Handler) -> None:
        """The handler returned: make sure its request finishes (error paths included)."""
        r, answered = h.fake_runner, h.fake_answered
        h.fake_runner, h.fake_answered = None, False
        if r is not None and not answered and ctx.epoch == r.epoch:
            self._register_finish(r)

    def _parse_options(self, raw: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
        """``api.Options.FromMap`` for the options that matter here; unknown keys are ignored."""
        values: dict[str, Any] = {}
        for key, val in (raw or {}).items():
            if val is None:
                continue
            if key in _INT_OPTIONS:
                if isinstance(val, bool) or not isinstance(val, (int, float)):
                    return {}, f'option "{key}" must be of type integer'
                values[key] = int(val)
            elif key in _FLOAT_OPTIONS:
                if isinstance(val, bool) or not isinstance(val, (int, float)):
                    return {}, f'option "{key}" must be of type float32'
                values[key] = float(val)
            elif key in _BOOL_OPTIONS:
                if not isinstance(val, bool):
                    return {}, f'option "{key}" must be of type boolean'
                values[key] = val
        num_ctx = values.get("num_ctx", self.default_num_ctx)
        return {
            "num_ctx": max(num_ctx, 4),
            "num_batch": values.get("num_batch"),
            "num_gpu": values.get("num_gpu"),
            "main_gpu": values.get("main_gpu", 0),
            "use_mmap": values.get("use_mmap"),
            "num_thread": values.get("num_thread", 0),
            "num_predict": values.get("num_predict", 16),
        }, None

    # ---------------------------------------------------------------- HTTP plumbing

    def _dispatch(self, h: _Handler) -> None:
        with self._cond:
            ctx = _Ctx(self._epoch, self._stop_event, self._load_lock, h.connection)
        h.fake_runner, h.fake_answered = None, False
        try:
            parts = urlsplit(h.path)
            path = parts.path
            try:
                body = self._read_body(h)
            except ValueError:  # malformed chunked body
                h.close_connection = True
                self._send(h, 400, b"400 Bad Request", "text/plain; charset=utf-8")
                return
            try:
                parsed_json = json.loads(body) if body.strip() else None
            except ValueError:
                parsed_json = None
            with self._cond:
                self.requests.append(
                    RecordedRequest(
                        method=h.command,
                        path=path,
                        json=parsed_json,
                        time=time.time(),
                        query=parts.query,
                        body=body,
                        headers=dict(h.headers.items()),
                    )
                )
            hang = self._take_hang(path)
            if hang is not None and ctx.stop.wait(hang):
                h.close_connection = True
                return
            fail = self._take_fail(path)
            if fail is not None:
                self._send_error(h, fail[0], fail[1])
                return
            if not self._host_allowed(h.headers.get("Host", "")):
                self._send(h, 403, b"", None)
                return
            methods = _ROUTE_METHODS.get(path)
            if path == "/api/ps" and not self.ps_supported:
                methods = None
            if methods is None:
                self._send(h, 404, b"404 page not found", "text/plain")
                return
            if h.command not in methods:
                self._send(
                    h, 405, b"405 method not allowed", "text/plain", [("Allow", ", ".join(methods))]
                )
                return
            handler = getattr(self, "_h_" + path.strip("/").replace("/", "_").replace(".", "_"))
            handler(h, body, ctx)
        except (OSError, _Canceled):
            # the client went away or the server stopped: nobody is left to answer
            h.close_connection = True
        except Exception:
            traceback.print_exc()
            h.close_connection = True
            with contextlib.suppress(OSError):
                self._send_error(h, 500, "fakeollama internal error (see stderr)")

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = h.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline(65537)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length > 0 else b""

    def _host_allowed(self, host_header: str) -> bool:
        """Go ``allowedHostsMiddleware``: on a loopback listener, only local Host headers."""
        try:
            if not ipaddress.ip_address(self.host).is_loopback:
                return True
        except ValueError:
            if self.host != "localhost":
                return True
        host = host_header
        if host.startswith("["):
            end = host.find("]")
            host = host[1:end] if end > 0 else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if ip.is_loopback or ip.is_unspecified or any(ip in n for n in _GO_PRIVATE):
                return True
        host = host.lower()
        if host in ("", "localhost") or host == socket.gethostname().lower():
            return True
        return host.endswith((".localhost", ".local", ".internal"))

    def _send(
        self,
        h: _Handler,
        status: int,
        body: bytes,
        content_type: str | None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._mark_answered(h)
        h.send_response_only(status, _REASONS.get(status))
        for name, value in extra_headers:
            h.send_header(name, value)
        if content_type:
            h.send_header("Content-Type", content_type)
        h.send_header("Date", h.date_time_string())
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def _send_json(self, h: _Handler, status: int, obj: Any) -> None:
        self._send(h, status, _dumps(obj), "application/json; charset=utf-8")

    def _send_error(self, h: _Handler, status: int, message: str) -> None:
        self._send_json(h, status, {"error": message})

    def _try_send_error(self, h: _Handler, status: int, message: str) -> None:
        try:
            self._send_error(h, status, message)
        except OSError:
            h.close_connection = True

    @staticmethod
    def _start_stream(h: _Handler, content_type: str) -> None:
        h.send_response_only(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Date", h.date_time_string())
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

    @staticmethod
    def _write_chunk(h: _Handler, data: bytes) -> None:
        h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_stream(self, h: _Handler) -> None:
        self._mark_answered(h)
        h.wfile.write(b"0\r\n\r\n")

    def _sleep(self, ctx: _Ctx, seconds: float) -> bool:
        """Sleep, watching for the client going away; False if it did (or the server stopped)."""
        deadline = time.monotonic() + seconds
        while True:
            if ctx.cancelled():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if ctx.stop.wait(min(remaining, 0.005)):
                return False

    def _bind_request(
        self, h: _Handler, body: bytes, struct: str, fields: _Fields
    ) -> dict[str, Any] | None:
        value, err = _decode_go_json(body)
        if value is _EOF:
            self._send_error(h, 400, "missing request body")
            return None
        if err is None:
            req, err = _bind(value, struct, fields)
            if err is None:
                return req
        self._send_error(h, 400, err)
        return None

    def _lookup(self, name: str) -> tuple[FakeModel | None, str]:
        """-> (model, problem) with problem "" | "empty" | "invalid" | "missing"."""
        if name == "":
            return None, "empty"
        parsed = _parse_name(name)
        if not parsed.valid():
            return None, "invalid"
        with self._cond:
            m = self._models.get(parsed.key())
        return (m, "") if m is not None else (None, "missing")

    # ---------------------------------------------------------------- simple endpoints

    def _h_(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        self._send(h, 200, b"Ollama is running", "text/plain; charset=utf-8")

    def _h_api_version(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        self._send_json(h, 200, {"version": self.version})

    def _details(self, m: FakeModel) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": m.format,
            "family": m.family,
            "families": [m.family],
            "parameter_size": m.parameter_size,
            "quantization_level": m.quantization_level,
        }

    def _h_api_tags(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        with self._cond:
            entries = [(self._modified_at[k], m) for k, m in self._models.items()]
        entries.sort(key=lambda e: -(e[0] // NS_PER_SECOND))
        models = [
            {
                "name": m.short_name,
                "model": m.short_name,
                "modified_at": format_go_time(mod, self.utc_offset_minutes),
                "size": m.file_size,
                "digest": m.digest,
                "details": self._details(m),
            }
            for mod, m in entries
        ]
        self._send_json(h, 200, {"models": models})

    def _h_api_ps(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        now = time.time_ns()
        with self._cond:
            entries = []
            for r in self._runners.values():
                expires = r.expires_at if r.expires_at is not None else now + r.duration
                entries.append(
                    (
                        expires,
                        {
                            "name": r.model.short_name,
                            "model": r.model.short_name,
                            "size": r.size,
                            "digest": r.model.digest,
                            "details": self._details(r.model),
                            "expires_at": format_go_time(expires, self.utc_offset_minutes),
                            "size_vram": r.size_vram,
                            "context_length": r.context_length,
                        },
                    )
                )
        # Go: SortStableFunc on ExpiresAt.Unix(), longest remaining first
        entries.sort(key=lambda e: -(e[0] // NS_PER_SECOND))
        self._send_json(h, 200, {"models": [e[1] for e in entries]})

    def _h_api_show(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        req = self._bind_request(h, body, "ShowRequest", _SHOW_FIELDS)
        if req is None:
            return
        name = req.get("model") or req.get("name") or ""
        if not name:
            self._send_error(h, 400, "model is required")
            return
        m, problem = self._lookup(name)
        if problem == "invalid":
            self._send_error(h, 400, "invalid model name")
            return
        if m is None:
            # real 0.24.0 echoes the name as sent (transcript 27c)
            self._send_error(h, 404, f"model '{name}' not found")
            return
        self._send_json(h, 200, self._show_response(m))

    def _show_response(self, m: FakeModel) -> dict[str, Any]:
        fam = m.family
        blob = hashlib.sha256(f"blob:{m.digest}".encode()).hexdigest()
        embedding = "embedding" in m.capabilities
        info: dict[str, Any] = {
            "general.architecture": fam,
            "general.file_type": 15 if m.quantization_level == "Q4_K_M" else 0,
            "general.parameter_count": _parameter_count(m.parameter_size),
            f"{fam}.attention.head_count": 4,
            f"{fam}.attention.head_count_kv": 4,
            f"{fam}.block_count": 2,
            f"{fam}.context_length": m.context_length,
            f"{fam}.embedding_length": m.embedding_length,
            f"{fam}.feed_forward_length": 2 * m.embedding_length,
            "tokenizer.ggml.model": "bert" if embedding else "llama",
            "tokenizer.ggml.tokens": None,
        }
        if embedding:
            info[f"{fam}.attention.causal"] = False
            info[f"{fam}.attention.layer_norm_epsilon"] = 1e-12
            info[f"{fam}.pooling_type"] = 1
        else:
            info[f"{fam}.attention.layer_norm_rms_epsilon"] = 0.00001
            info[f"{fam}.rope.freq_base"] = 10000.0
        template = "{{ .Prompt }}"
        return {
            "modelfile": (
                '# Modelfile generated by "ollama show"\n'
                "# To build a new Modelfile based on this, replace FROM with:\n"
                f"# FROM {m.short_name}\n\n"
                f"FROM $OLLAMA_MODELS/blobs/sha256-{blob}\n"
                f"TEMPLATE {template}\n"
            ),
            "template": template,
            "details": self._details(m),
            "model_info": dict(sorted(info.items())),
            "tensors": [
                {"name": "token_embd.weight", "type": "F32", "shape": [m.embedding_length, 329]},
                {"name": "output_norm.weight", "type": "F32", "shape": [m.embedding_length]},
            ],
            **({"capabilities": list(m.capabilities)} if m.capabilities else {}),
            "modified_at": format_go_time(self._modified_at[m.key], self.utc_offset_minutes),
        }

    def _h_api_delete(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        req = self._bind_request(h, body, "DeleteRequest", _DELETE_FIELDS)
        if req is None:
            return
        name = req.get("model") or req.get("name") or ""
        m, problem = self._lookup(name)
        if problem == "empty":
            self._send_error(h, 400, "model is required")
        elif problem == "invalid":
            self._send_error(h, 400, f"name {_go_quote(name)} is invalid")
        elif m is None:
            self._send_error(h, 404, f"model '{name}' not found")
        else:
            self.remove_model(name)
            self._send(h, 200, b"", None)

    # ---------------------------------------------------------------- inference endpoints

    def _schedule_or_answer(
        self,
        h: _Handler,
        ctx: _Ctx,
        m: FakeModel,
        keep_alive: int | None,
        opts: dict[str, Any],
        error: Callable[[int, str], None] | None = None,
    ) -> _Runner | None:
        send = error or (lambda status, msg: self._send_error(h, status, msg))
        try:
            runner = self._get_runner(ctx, m, keep_alive, opts)
        except _Canceled:
            if not ctx.stop.is_set():
                with contextlib.suppress(OSError):
                    send(499, "request canceled")
            h.close_connection = True
            return None
        except _ScheduleError as exc:
            send(exc.status, exc.message)
            return None
        h.fake_runner = runner
        return runner

    def _check_think(self, h: _Handler, name: str, m: FakeModel, think: Any) -> bool:
        wants = think is True or (isinstance(think, str) and think not in ("", "false"))
        if wants and "thinking" not in m.capabilities:
            self._send_error(h, 400, f"{_go_quote(name)} does not support thinking")
            return False
        return True

    def _h_api_generate(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        start = time.monotonic_ns()
        req = self._bind_request(h, body, "GenerateRequest", _GENERATE_FIELDS)
        if req is None:
            return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem == "invalid":
            self._send_error(h, 400, "invalid model name")
            return
        if m is None:
            self._send_error(h, 404, f"model '{name}' not found")
            return
        keep_alive = req.get("keep_alive")
        prompt = req.get("prompt", "")
        if prompt == "" and keep_alive == 0:
            self._expire_runner(ctx, m)
            self._send_json(
                h,
                200,
                {
                    "model": name,
                    "created_at": _now_utc(),
                    "response": "",
                    "done": True,
                    "done_reason": "unload",
                },
            )
            return
        if "completion" not in m.capabilities:
            self._send_error(h, 400, f"{_go_quote(name)} does not support generate")
            return
        if not self._check_think(h, name, m, req.get("think")):
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        runner = self._schedule_or_answer(h, ctx, m, keep_alive, opts)
        if runner is None:
            return
        try:
            loaded = time.monotonic_ns()
            if prompt == "":
                self._send_json(
                    h,
                    200,
                    {
                        "model": name,
                        "created_at": _now_utc(),
                        "response": "",
                        "done": True,
                        "done_reason": "load",
                    },
                )
            else:
                stream = req.get("stream", True)
                self._generate(h, ctx, name, prompt, opts, stream, start, loaded, chat=False)
        finally:
            self._schedule_finish(ctx, h)

    def _h_api_chat(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        start = time.monotonic_ns()
        req = self._bind_request(h, body, "ChatRequest", _CHAT_FIELDS)
        if req is None:
            return
        messages = req.get("messages") or []
        for item in messages:
            if not isinstance(item, dict):
                self._send_error(
                    h,
                    400,
                    f"json: cannot unmarshal {_json_kind(item)} into Go struct field "
                    "ChatRequest.messages of type api.Message",
                )
                return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem in ("empty", "invalid"):
            self._send_error(h, 400, _MODEL_PROBLEMS[problem])
            return
        if m is None:
            self._send_error(h, 404, f"model '{name}' not found")
            return
        keep_alive = req.get("keep_alive")
        if not messages and keep_alive == 0:
            self._expire_runner(ctx, m)
            self._send_json(h, 200, self._chat_reply(name, "", "unload"))
            return
        if "completion" not in m.capabilities:
            self._send_error(h, 400, f"{_go_quote(name)} does not support chat")
            return
        if req.get("tools") and "tools" not in m.capabilities:
            self._send_error(h, 400, f"{m.full_name} does not support tools")
            return
        if not self._check_think(h, name, m, req.get("think")):
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        runner = self._schedule_or_answer(h, ctx, m, keep_alive, opts)
        if runner is None:
            return
        try:
            loaded = time.monotonic_ns()
            if not messages:
                self._send_json(h, 200, self._chat_reply(name, "", "load"))
            else:
                text = " ".join(str(x.get("content") or "") for x in messages)
                stream = req.get("stream", True)
                self._generate(h, ctx, name, text, opts, stream, start, loaded, chat=True)
        finally:
            self._schedule_finish(ctx, h)

    @staticmethod
    def _chat_reply(name: str, content: str, reason: str) -> dict[str, Any]:
        return {
            "model": name,
            "created_at": _now_utc(),
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": reason,
        }

    def _generate(
        self,
        h: _Handler,
        ctx: _Ctx,
        name: str,
        text: str,
        opts: dict[str, Any],
        stream: bool,
        start: int,
        loaded: int,
        *,
        chat: bool,
    ) -> None:
        """Simulate ``num_predict`` tokens, ``token_delay`` seconds each."""
        count = opts["num_predict"]
        reason = "length"
        if count < 0:  # -1/-2: until the model stops on its own
            count, reason = 16, "stop"
        pieces = [_WORDS[i % len(_WORDS)] for i in range(count)]
        prompt_tokens = len(text.split()) + 5
        gen_start = time.monotonic_ns()

        def piece_obj(piece: str) -> dict[str, Any]:
            if chat:
                return {
                    "model": name,
                    "created_at": _now_utc(),
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            return {"model": name, "created_at": _now_utc(), "response": piece, "done": False}

        def final_obj(content: str) -> dict[str, Any]:
            end = time.monotonic_ns()
            obj: dict[str, Any] = {"model": name, "created_at": _now_utc()}
            if chat:
                obj["message"] = {"role": "assistant", "content": content}
            else:
                obj["response"] = content
            obj["done"] = True
            obj["done_reason"] = reason
            if not chat:
                obj["context"] = [256 + (i * 37) % 73 for i in range(prompt_tokens + count)]
            obj["total_duration"] = end - start
            obj["load_duration"] = loaded - start
            obj["prompt_eval_count"] = prompt_tokens
            obj["prompt_eval_duration"] = max(1, (gen_start - loaded) // 2)
            obj["eval_count"] = count
            obj["eval_duration"] = end - gen_start
            return obj

        if not stream:
            for _ in pieces:
                if not self._sleep(ctx, self.token_delay):
                    raise _Canceled()
            self._send_json(h, 200, final_obj("".join(pieces)))
            return
        with self._cond:
            stream_error = self._stream_errors.pop(0) if self._stream_errors else None
        self._start_stream(h, "application/x-ndjson")
        for piece in pieces:
            if not self._sleep(ctx, self.token_delay):
                raise _Canceled()
            self._write_chunk(h, _dumps(piece_obj(piece)) + b"\n")
            if stream_error is not None:
                break
        if stream_error is not None:
            self._write_chunk(h, _dumps({"error": stream_error}) + b"\n")
        else:
            self._write_chunk(h, _dumps(final_obj("")) + b"\n")
        self._end_stream(h)

    def _embedding(self, text: str, dims: int) -> list[float]:
        seed = hashlib.sha256(text.encode()).digest()
        raw = [(seed[i % 32] ^ (i * 131 % 256)) / 255.0 - 0.5 for i in range(max(1, dims))]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        return [round(x / norm, 8) for x in raw]

    def _h_api_embed(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        start = time.monotonic_ns()
        req = self._bind_request(h, body, "EmbedRequest", _EMBED_FIELDS)
        if req is None:
            return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem == "empty":
            self._send_error(h, 404, "model '' not found")
            return
        if problem == "invalid":
            self._send_error(h, 400, "invalid model name")
            return
        raw_input = req.get("input")
        inputs: list[str] = []
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list):
            if not all(isinstance(x, str) for x in raw_input):
                self._send_error(h, 400, "invalid input type")
                return
            inputs = list(raw_input)
        elif raw_input is not None:
            self._send_error(h, 400, "invalid input type")
            return
        if m is None:
            self._send_error(h, 404, f"model {_go_quote(name)} not found, try pulling it first")
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        # no unload shortcut here: keep_alive 0 loads (if needed), then unloads once idle
        runner = self._schedule_or_answer(h, ctx, m, req.get("keep_alive"), opts)
        if runner is None:
            return
        try:
            loaded = time.monotonic_ns()
            if not inputs:
                self._send_json(h, 200, {"model": name, "embeddings": []})
                return
            for _ in inputs:
                if not self._sleep(ctx, self.token_delay):
                    raise _Canceled()
            self._send_json(
                h,
                200,
                {
                    "model": name,
                    "embeddings": [self._embedding(x, m.embedding_length) for x in inputs],
                    "total_duration": time.monotonic_ns() - start,
                    "load_duration": loaded - start,
                    "prompt_eval_count": sum(len(x.split()) + 2 for x in inputs),
                },
            )
        finally:
            self._schedule_finish(ctx, h)

    def _h_api_embeddings(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        req = self._bind_request(h, body, "EmbeddingRequest", _EMBEDDINGS_FIELDS)
        if req is None:
            return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem in ("empty", "invalid"):
            self._send_error(h, 400, _MODEL_PROBLEMS[problem])
            return
        if m is None:
            self._send_error(h, 404, f"model {_go_quote(name)} not found, try pulling it first")
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        runner = self._schedule_or_answer(h, ctx, m, req.get("keep_alive"), opts)
        if runner is None:
            return
        try:
            prompt = req.get("prompt", "")
            if prompt == "":
                self._send_json(h, 200, {"embedding": []})
                return
            if not self._sleep(ctx, self.token_delay):
                raise _Canceled()
            self._send_json(h, 200, {"embedding": self._embedding(prompt, m.embedding_length)})
        finally:
            self._schedule_finish(ctx, h)

    def _h_v1_chat_completions(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        """OpenAI-compatible chat (approximate shapes). Never carries a keep_alive."""

        def oa_error(status: int, message: str) -> None:
            kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
            self._send_json(
                h,
                status,
                {"error": {"message": message, "type": kind, "param": None, "code": None}},
            )

        value, err = _decode_go_json(body)
        if value is _EOF or err is not None or not isinstance(value, dict):
            oa_error(400, err or "EOF")
            return
        raw_name, raw_messages = value.get("model"), value.get("messages")
        name: str = raw_name if isinstance(raw_name, str) else ""
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        m, problem = self._lookup(name)
        if problem in ("empty", "invalid"):
            oa_error(400, "model is required" if problem == "empty" else "invalid model name")
            return
        if m is None:
            oa_error(404, f"model '{name}' not found")
            return
        if "completion" not in m.capabilities:
            oa_error(400, f"{_go_quote(name)} does not support chat")
            return
        raw_opts: dict[str, Any] = {}
        if isinstance(value.get("max_tokens"), int):
            raw_opts["num_predict"] = value["max_tokens"]
        opts, _ = self._parse_options(raw_opts)
        runner = self._schedule_or_answer(h, ctx, m, None, opts, error=oa_error)
        if runner is None:
            return
        try:
            count = opts["num_predict"] if messages else 0
            pieces = [_WORDS[i % len(_WORDS)] for i in range(max(count, 0))]
            finish = "length" if messages else "load"
            created = int(time.time())
            base = {"id": "chatcmpl-42", "created": created, "model": name}
            base["system_fingerprint"] = "fp_ollama"
            if value.get("stream") is True:
                self._start_stream(h, "text/event-stream")
                for piece in pieces:
                    if not self._sleep(ctx, self.token_delay):
                        raise _Canceled()
                    chunk = {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": piece},
                                "finish_reason": None,
                            }
                        ],
                    }
                    self._write_chunk(h, b"data: " + _dumps(chunk) + b"\n\n")
                last = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": finish,
                        }
                    ],
                }
                self._write_chunk(h, b"data: " + _dumps(last) + b"\n\n")
                self._write_chunk(h, b"data: [DONE]\n\n")
                self._end_stream(h)
                return
            for _ in pieces:
                if not self._sleep(ctx, self.token_delay):
                    raise _Canceled()
            prompt_tokens = sum(len(str(x.get("content", "")).split()) for x in messages) + 5
            self._send_json(
                h,
                200,
                {
                    "id": base["id"],
                    "object": "chat.completion",
                    "created": created,
                    "model": name,
                    "system_fingerprint": "fp_ollama",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(pieces)},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(pieces),
                        "total_tokens": prompt_tokens + len(pieces),
                    },
                },
            )
        finally:
            self._schedule_finish(ctx, h)


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        fake: FakeOllama,
        family: socket.AddressFamily,
    ) -> None:
        self.address_family = family
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._stopped = threading.Event()
        try:
            super().__init__(address, handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise

    def serve(self) -> None:
        """Like ``serve_forever`` but woken at once by ``stop_serving`` (no poll interval)."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stopping:
                    for key, _ in selector.select():
                        if key.fileobj is self and not self._stopping:
                            self._handle_request_noblock()  # type: ignore[attr-defined]
        finally:
            self._stopped.set()

    def stop_serving(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._stopped.wait(timeout=2)

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), which can block on DNS
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection-level errors (client vanished) are expected; stay quiet."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer
    # the runner the current request holds, and whether its answer has gone out
    fake_runner: _Runner | None = None
    fake_answered: bool = False

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake records requests instead of logging them."""

    def _serve(self) -> None:
        self.server.fake._dispatch(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve


# --------------------------------------------------------------------------------------------
# Standalone use
# --------------------------------------------------------------------------------------------


def _split_preload(spec: str) -> tuple[str, Any]:
    """``MODEL[:KEEPALIVE]`` -> (model, JSON-style keep_alive); ``tiny:latest`` has none."""
    name, sep, tail = spec.rpartition(":")
    if sep and name:
        if re.fullmatch(r"[+-]?[0-9]+(\.[0-9]*)?", tail):
            return name, float(tail) if "." in tail else int(tail)
        try:
            parse_go_duration(tail)
        except GoDurationError:
            pass
        else:
            return name, tail
    return spec, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fakeollama", description="Serve a fake Ollama API until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--max-loaded", type=int, default=3)
    parser.add_argument("--memory-budget", type=int, default=None, help="bytes")
    parser.add_argument("--gpu-memory", type=int, default=0, help="bytes of VRAM (0 = CPU only)")
    parser.add_argument("--keep-alive", default="5m", help="server default (OLLAMA_KEEP_ALIVE)")
    parser.add_argument("--num-ctx", type=int, default=4096, help="default context")
    parser.add_argument("--load-delay", type=float, default=0.05, help="seconds")
    parser.add_argument("--unload-delay", type=float, default=0.02, help="seconds")
    parser.add_argument("--token-delay", type=float, default=0.002, help="seconds per token")
    parser.add_argument("--utc-offset-minutes", type=int, default=0)
    parser.add_argument("--server-version", default="0.24.0")
    parser.add_argument("--list-loading", action="store_true", help="list models while loading")
    parser.add_argument("--no-ps", action="store_true", help="act as a server older than 0.1.38")
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        metavar="MODEL:KEEPALIVE",
        help="load a model at start (repeatable), e.g. tiny:-1 or llama3.2:5m",
    )
    args = parser.parse_args(argv)
    fake = FakeOllama(
        max_loaded=args.max_loaded,
        memory_budget=args.memory_budget,
        gpu_memory=args.gpu_memory,
        default_keep_alive=args.keep_alive,
        default_num_ctx=args.num_ctx,
        load_delay=args.load_delay,
        unload_delay=args.unload_delay,
        token_delay=args.token_delay,
        version=args.server_version,
        utc_offset_minutes=args.utc_offset_minutes,
        list_loading=args.list_loading,
        ps_supported=not args.no_ps,
        host=args.host,
        port=args.port,
    )

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    fake.start()
    try:
        for spec in args.preload:
            model, keep_alive = _split_preload(spec)
            fake.preload(model, keep_alive)
        print(f"fake Ollama {fake.version} listening on {fake.url}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
