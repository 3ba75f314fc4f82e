"""Go durations and times: ``time.ParseDuration``, ``api.Duration.UnmarshalJSON`` (a request's
``keep_alive``), ``OLLAMA_KEEP_ALIVE`` (``envconfig.KeepAlive``) and ``time.RFC3339Nano``.

All durations are integer nanoseconds; error texts are Go's, byte for byte.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
from typing import Any

NS_PER_SECOND = 1_000_000_000
#: Go ``time.Duration(math.MaxInt64)``: what every negative keep_alive becomes ("forever").
MAX_DURATION = 2**63 - 1
#: What a float-to-int64 overflow yields on amd64 (huge keep_alive numbers).
MIN_DURATION = -(2**63)
_U64 = 2**64
_FIVE_MINUTES = 5 * 60 * NS_PER_SECOND
# Timers longer than this never fire within a test run; not scheduling them keeps the heap small.
_NEVER_NS = 100 * 365 * 24 * 3600 * NS_PER_SECOND


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
