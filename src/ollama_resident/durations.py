"""Durations and timestamps exactly as Ollama (and Go underneath it) reads and writes them.

Ollama parses ``keep_alive`` strings with Go's ``time.ParseDuration`` and reports
``expires_at`` as RFC 3339 with nanoseconds. Re-implementing both here, rather than
approximating them, means that whatever this tool accepts the server accepts too, and
that a value the server would reject is refused with the server's own words before a
request is sent. See ``ollama-contract.md`` §1 (keep_alive), §3.2/3.3 (expires_at).

Pure: no I/O, no clock. Callers pass ``now`` in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

__all__ = [
    "FOREVER_THRESHOLD_S",
    "MAX_DURATION_NS",
    "DurationError",
    "KeepAlive",
    "KeepAliveKind",
    "format_countdown",
    "format_go_duration",
    "format_window",
    "is_forever",
    "keep_alive_from_wire",
    "parse_go_duration",
    "parse_keep_alive",
    "parse_timestamp",
    "parse_window",
    "round_up_to_minute",
    "seconds_until",
]

MAX_DURATION_NS: int = 2**63 - 1
"""Go's ``math.MaxInt64`` nanoseconds (2562047h47m16.854775807s): what Ollama stores for a pin."""

FOREVER_THRESHOLD_S: float = 20 * 365 * 86400
"""An ``expires_at`` at least this far ahead means "pinned forever".

A pin is stored as now + MAX_DURATION_NS, so it shows up as a date about 292 years
ahead, never as a sentinel; compare against a threshold, never for equality.
"""

KeepAliveKind = Literal["forever", "unload", "finite"]

_NS_PER_S = 1_000_000_000
_NS_PER_MIN = 60 * _NS_PER_S
_NS_PER_H = 60 * _NS_PER_MIN
_MIN_DURATION_NS = -(2**63)
_TWO_63 = 1 << 63
_UINT64_MASK = (1 << 64) - 1

# Go's unitMap. Both micro spellings are accepted: U+00B5 MICRO SIGN and U+03BC GREEK
# SMALL LETTER MU.
_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": _NS_PER_S,
    "m": _NS_PER_MIN,
    "h": _NS_PER_H,
}

_FOREVER_WORDS = frozenset({"forever", "inf", "infinite", "infinity", "never"})
# Patterns are compiled on first use (re caches them): an import compiles nothing.
_BARE_NUMBER = r"([+-]?)([0-9]*)(?:\.([0-9]*))?"
_KEEP_ALIVE_HINT = '(use ns, us, ms, s, m or h, e.g. "24h"; "forever" or -1 to pin; 0 to unload)'
# For an option that refuses 0 (`preload --keep-alive`, `pin --for`, `guard --for`).
_KEEP_ALIVE_HINT_NO_UNLOAD = '(use ns, us, ms, s, m or h, e.g. "24h"; "forever" or -1 to pin)'
_RFC3339 = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)


class DurationError(ValueError):
    """A duration or keep-alive that cannot be used.

    ``str()`` is complete and ready to show to the user.
    """


class _GoDurationError(DurationError):
    """What ``time.ParseDuration`` says, plus the reason in a form callers can re-word.

    ``reason`` is Go's message without the ``time: `` prefix and the ``in duration``
    tail; ``overflow`` tells a value that is too large apart from bad syntax, which
    Go reports with the same words.
    """

    def __init__(self, message: str, reason: str, *, overflow: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.overflow = overflow


def _go_quote(s: str) -> str:
    """Go's ``time.quote``: double quotes, ``\\xNN`` per byte of a non-ASCII or control character.

    Lone surrogates (bytes that were not UTF-8, decoded with ``surrogateescape``) come
    out as the original bytes, which is what Go shows for invalid UTF-8.
    """
    out = ['"']
    for ch in s:
        if " " <= ch < "\x80":
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
            continue
        try:
            raw = ch.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = ch.encode("utf-8", "surrogatepass")
        out.extend(f"\\x{b:02x}" for b in raw)
    out.append('"')
    return "".join(out)


def _invalid(orig: str, *, overflow: bool = False) -> _GoDurationError:
    return _GoDurationError(
        f"time: invalid duration {_go_quote(orig)}", "invalid duration", overflow=overflow
    )


def _is_digit(c: str) -> bool:
    # str.isdigit() would accept non-ASCII digits; Go only takes 0-9.
    return "0" <= c <= "9"


def parse_go_duration(text: str) -> int:
    """Nanoseconds, exactly like Go's ``time.ParseDuration``.

    An optional sign, then a sequence of decimal numbers, each with an optional fraction
    and a unit (ns, us, µs (U+00B5), U+03BC followed by s, ms, s, m, h), e.g. "300ms",
    "-1.5h", "2h45m". "0", "+0" and "-0" alone are valid; no whitespace is trimmed; a
    value beyond int64 is an error. The arithmetic (uint64 accumulation, float64 for
    fractions) follows Go step by step so the result is the same to the nanosecond.

    Errors raise :class:`DurationError` with Go's exact text:
    ``time: invalid duration "x"``, ``time: missing unit in duration "300"``,
    ``time: unknown unit "d" in duration "1d"``.
    """
    orig = text
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise _invalid(orig)
    d = 0
    i, n = 0, len(s)
    while i < n:
        if not (s[i] == "." or _is_digit(s[i])):
            raise _invalid(orig)
        # leadingInt: [0-9]*
        start = i
        v = 0
        while i < n and _is_digit(s[i]):
            if v > _TWO_63 // 10:
                raise _invalid(orig, overflow=True)
            v = v * 10 + ord(s[i]) - 48
            if v > _TWO_63:
                raise _invalid(orig, overflow=True)
            i += 1
        pre = i != start
        # leadingFraction: (\.[0-9]*)? -- stops gaining precision instead of failing.
        f, scale, post = 0, 1.0, False
        if i < n and s[i] == ".":
            i += 1
            start = i
            overflow = False
            while i < n and _is_digit(s[i]):
                if not overflow:
                    if f > (_TWO_63 - 1) // 10:
                        overflow = True
                    else:
                        y = f * 10 + ord(s[i]) - 48
                        if y > _TWO_63:
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            post = i != start
        if not pre and not post:
            raise _invalid(orig)  # no digits, e.g. ".s" or "-.s"
        start = i
        while i < n and not (s[i] == "." or _is_digit(s[i])):
            i += 1
        if i == start:
            raise _GoDurationError(
                f"time: missing unit in duration {_go_quote(orig)}", "missing unit"
            )
        u = s[start:i]
        unit = _UNITS.get(u)
        if unit is None:
            raise _GoDurationError(
                f"time: unknown unit {_go_quote(u)} in duration {_go_quote(orig)}",
                f"unknown unit {_go_quote(u)}",
            )
        if v > _TWO_63 // unit:
            raise _invalid(orig, overflow=True)
        v *= unit
        if f > 0:
            # Go: v += uint64(float64(f) * (float64(unit) / scale)); float64 is IEEE
            # double in both languages and int() truncates like the conversion.
            v += int(float(f) * (float(unit) / scale))
            if v > _TWO_63:
                raise _invalid(orig, overflow=True)
        # d is a uint64 in Go: 2**63 + 2**63 wraps to 0 and passes the check below.
        d = (d + v) & _UINT64_MASK
        if d > _TWO_63:
            raise _invalid(orig, overflow=True)
    if neg:
        return -d
    if d > MAX_DURATION_NS:
        raise _invalid(orig, overflow=True)
    return d


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Go's ``fmtFrac``: ".123" without trailing zeros (or "" if zero), and v // 10**prec."""
    whole, rest = divmod(v, 10**prec)
    digits = f"{rest:0{prec}d}".rstrip("0")
    return ("." + digits if digits else ""), whole


def format_go_duration(ns: int) -> str:
    """Go's ``Duration.String()``.

    "0s", "1.5s", "300ms", "5m0s", "1h30m0s", "-1m0s", "1µs", "500ns". This is the form
    Ollama's own Go client sends and logs (``OLLAMA_KEEP_ALIVE:5m0s``).
    """
    if not _MIN_DURATION_NS <= ns <= MAX_DURATION_NS:
        raise ValueError(f"{ns} ns is outside Go's time.Duration range")
    if ns == 0:
        return "0s"
    u = abs(ns)
    sign = "-" if ns < 0 else ""
    if u < _NS_PER_S:
        # Below one second Go switches to smaller units, e.g. 1.2ms.
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            frac, whole = _fmt_frac(u, 3)
            return f"{sign}{whole}{frac}\u00b5s"
        frac, whole = _fmt_frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, secs = _fmt_frac(u, 9)
    out = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes > 0:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours > 0:  # Go stops at hours: days vary in length.
            out = f"{hours}h{out}"
    return sign + out


@dataclass(frozen=True)
class KeepAlive:
    """A keep-alive as this tool means it: pin, unload now, or stay for a finite window.

    ``ns`` is MAX_DURATION_NS for ``forever``, 0 for ``unload`` and positive for
    ``finite`` (a finite window of MAX_DURATION_NS is the same thing as a pin to Ollama,
    so it is classified as ``forever``).
    """

    kind: KeepAliveKind
    ns: int

    def __post_init__(self) -> None:
        ok = (
            (self.kind == "forever" and self.ns == MAX_DURATION_NS)
            or (self.kind == "unload" and self.ns == 0)
            or (self.kind == "finite" and 0 < self.ns < MAX_DURATION_NS)
        )
        if not ok or isinstance(self.ns, bool):
            raise ValueError(f"inconsistent KeepAlive(kind={self.kind!r}, ns={self.ns!r})")

    @classmethod
    def forever(cls) -> KeepAlive:
        return cls("forever", MAX_DURATION_NS)

    @classmethod
    def unload(cls) -> KeepAlive:
        return cls("unload", 0)

    @classmethod
    def of_seconds(cls, s: float) -> KeepAlive:
        """Negative -> forever, 0 -> unload, else a window rounded to the nearest nanosecond."""
        if math.isnan(s) or math.isinf(s):
            raise DurationError(f"invalid keep-alive: {s} is not a number of seconds")
        if s < 0:
            return cls.forever()
        ns = _seconds_to_ns(s)
        if ns > MAX_DURATION_NS:
            raise DurationError(_too_long_message(_format_window_ns(ns)))
        return _from_ns(ns)

    @property
    def seconds(self) -> float | None:
        """The window in seconds; None for forever (0.0 for unload)."""
        if self.kind == "forever":
            return None
        return self.ns / _NS_PER_S

    def to_wire(self) -> int | str:
        """The JSON value to send as ``keep_alive``.

        Forever is the *number* -1 (Ollama rejects the string "-1": missing unit);
        unload is 0; a finite window is a Go duration string such as "5m0s", because
        strings are read identically by every Ollama version while numbers changed
        meaning (int seconds in v0.1.34-v0.11.7, float seconds before and after).
        """
        if self.kind == "forever":
            return -1
        if self.kind == "unload":
            return 0
        return format_go_duration(self.ns)

    def describe(self) -> str:
        """Short words for messages: forever, unload, or the window as typed ("5m", "1h30m")."""
        if self.kind == "finite":
            return _format_window_ns(self.ns)
        return self.kind


def _from_ns(ns: int) -> KeepAlive:
    """Classify a duration the way Ollama does: negative is a pin, zero unloads."""
    if ns < 0 or ns >= MAX_DURATION_NS:
        return KeepAlive.forever()
    if ns == 0:
        return KeepAlive.unload()
    return KeepAlive("finite", ns)


def _seconds_to_ns(seconds: float) -> int:
    """Nanoseconds for the decimal the user meant, to the nearest nanosecond.

    Goes through repr(), the shortest decimal that reads back as the same float:
    0.3 * 1e9 in floats is not 3e8, and the exact binary value of 9223372036.854 ends
    in ...854000092 ns; the user wrote neither.
    """
    if isinstance(seconds, int):
        return seconds * _NS_PER_S
    from fractions import Fraction  # with decimal and numbers: 3 ms that `ps` never needs

    return round(Fraction(repr(float(seconds))) * _NS_PER_S)


def _too_long_message(shown: str) -> str:
    return (
        f"invalid keep-alive {_go_quote(shown)}: invalid duration, longer than the maximum "
        f"{format_go_duration(MAX_DURATION_NS)} (about 292 years); "
        'use "forever" or -1 to pin'
    )


def parse_window(text: str) -> float:
    """Seconds of a look-back window such as ``--since 2h``: a Go duration ("30m",
    "1h30m") or a bare number of seconds, positive. Not a keep-alive: no "forever",
    no 0. Raises :class:`DurationError`, e.g. ``invalid duration "5x": unknown unit "x"
    (use s, m or h, e.g. "30m" or "2h")``.
    """
    t = text.strip()
    hint = '(use s, m or h, e.g. "30m" or "2h")'
    if re.fullmatch(_BARE_NUMBER, t) and any(c.isdigit() for c in t):
        seconds = float(t)
    else:
        try:
            seconds = parse_go_duration(t) / _NS_PER_S
        except _GoDurationError as exc:
            reason = "too long" if exc.overflow else exc.reason
            raise DurationError(f"invalid duration {_go_quote(t)}: {reason} {hint}") from None
    if not seconds > 0:
        raise DurationError(f"invalid duration {_go_quote(t)}: it must be positive {hint}")
    return seconds


def parse_keep_alive(text: str, *, unload_ok: bool = True) -> KeepAlive:
    """What a user types on the command line or in a profile.

    Surrounding whitespace is trimmed and words are case-insensitive.

    - "forever", "inf", "infinite", "infinity", "never" (never unload), and any negative
      number or negative duration ("-1", "-1m") -> forever;
    - "0", "0s", "-0", "0m" ... -> unload;
    - a bare integer or decimal ("300", "1.5") -> seconds (Ollama would reject "300" as a
      string, so it is converted here);
    - otherwise a Go duration ("5m", "1h30m", "1.5h", "300ms"), units case-sensitive.

    Anything else raises :class:`DurationError` naming the input, quoting Go's reason
    and saying what would work (``unload_ok=False``, for an option that refuses 0: the
    hint does not offer it), e.g. ``invalid keep-alive "1d": unknown unit "d" (use ns,
    us, ms, s, m or h, e.g. "24h"; "forever" or -1 to pin; 0 to unload)``.
    """
    t = text.strip()
    hint = _KEEP_ALIVE_HINT if unload_ok else _KEEP_ALIVE_HINT_NO_UNLOAD
    if t.lower() in _FOREVER_WORDS:
        return KeepAlive.forever()
    if t == "":
        raise DurationError(f'invalid keep-alive "": it is empty {hint}')
    m = re.fullmatch(_BARE_NUMBER, t)
    if m is not None and (m.group(2) or m.group(3)):
        sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
        if sign == "-" and any(c != "0" for c in whole + frac):
            return KeepAlive.forever()
        whole = whole.lstrip("0")
        if len(whole) > 12:  # > 2**63 ns for sure; also keeps int() away from huge strings
            raise DurationError(_too_long_message(t))
        ns = int(whole or "0") * _NS_PER_S + int((frac + "0" * 9)[:9])
        if ns > MAX_DURATION_NS:
            raise DurationError(_too_long_message(t))
        return _from_ns(ns)
    try:
        ns = parse_go_duration(t)
    except _GoDurationError as exc:
        if exc.overflow and not t.startswith("-"):
            raise DurationError(_too_long_message(t)) from None
        raise DurationError(f"invalid keep-alive {_go_quote(t)}: {exc.reason} {hint}") from None
    return _from_ns(ns)


def keep_alive_from_wire(value: object) -> KeepAlive | None:
    """How Ollama itself reads a JSON ``keep_alive`` (``Duration.UnmarshalJSON``, contract §1.2).

    - absent or null -> None (unset: the runner keeps its current value);
    - a number is float seconds: negative -> forever, 0 -> unload, ``0.4`` -> 400ms;
      one of 2**63 ns or more overflows Go's float-to-int conversion, which on amd64
      gives a negative duration that unloads as soon as the model is idle, so -> unload;
    - a string goes through ``time.ParseDuration`` (no trimming, "300" lacks a unit);
      negative -> forever;
    - bool, array, object -> ``DurationError("Unsupported type: 'bool'")`` etc.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise DurationError("Unsupported type: 'bool'")
    if isinstance(value, (int, float)):
        try:
            t = float(value)  # encoding/json decodes every number as float64
        except OverflowError:
            raise DurationError(
                f"json: cannot unmarshal number {value} into Go value of type float64"
            ) from None
        if math.isnan(t) or math.isinf(t):
            raise DurationError(f"invalid keep_alive: {value!r} is not a JSON number")
        if t < 0:
            return KeepAlive.forever()
        product = t * float(_NS_PER_S)
        if product >= 2.0**63:
            return KeepAlive.unload()
        return _from_ns(int(product))  # Go's conversion truncates toward zero
    if isinstance(value, str):
        return _from_ns(parse_go_duration(value))
    if isinstance(value, (list, tuple)):
        raise DurationError("Unsupported type: '[]interface {}'")
    if isinstance(value, dict):
        raise DurationError("Unsupported type: 'map[string]interface {}'")
    raise DurationError(f"Unsupported type: {type(value).__name__!r}")


def parse_timestamp(text: str) -> datetime:
    """An aware datetime from RFC 3339 as Go writes it (``time.RFC3339Nano``).

    'Z' or a ±hh:mm offset, 0 to 9 fraction digits (truncated to microseconds), e.g.
    '2319-03-04T01:31:06.21506357Z', '2318-12-01T04:47:16.854775807-07:00',
    '0001-01-01T00:00:00Z'. Written by hand because ``datetime.fromisoformat`` on
    Python 3.10 takes neither 'Z' nor more than 6 fraction digits.
    Raises ValueError on anything else.
    """
    m = re.fullmatch(_RFC3339, text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int(((m.group(7) or "") + "000000")[:6])
    zone = m.group(8)
    if zone == "Z":
        tz = timezone.utc
    else:
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"not an RFC 3339 timestamp: {text!r} (offset out of range)")
        offset = timedelta(hours=oh, minutes=om)
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r} ({exc})") from None


def seconds_until(when: datetime, now: datetime) -> float:
    """Seconds from ``now`` to ``when``; negative once ``when`` has passed."""
    return (when - now).total_seconds()


_FOREVER_DELTA = timedelta(seconds=FOREVER_THRESHOLD_S)


def is_forever(expires_at: datetime, now: datetime) -> bool:
    """True when ``expires_at`` is at least FOREVER_THRESHOLD_S ahead: a pinned model.

    Never compare with an expected pin date: it is "went idle + MAX_DURATION_NS" in the
    server's local offset, so it moves with every request and every time zone.
    """
    return expires_at - now >= _FOREVER_DELTA


def _check_seconds(seconds: float, what: str) -> None:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{what}: {seconds} is not a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"{what}: {seconds} is negative")


def format_countdown(seconds: float) -> str:
    """Compact time left for a table column: '<1s', '42s', '4m 12s', '1h 05m', '3d 04h'.

    Truncates (a fresh 5m window reads '4m 59s' a moment later, never '5m 00s' early),
    zero-pads the second unit so columns stay aligned. 'Forever' is the caller's
    business (see :func:`is_forever`); negative input raises ValueError.
    """
    _check_seconds(seconds, "countdown")
    total = int(seconds)
    if total < 1:
        return "<1s"
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h {total % 3600 // 60:02d}m"
    return f"{total // 86400}d {total % 86400 // 3600:02d}h"


def _format_window_ns(ns: int) -> str:
    if ns == 0:
        return "0s"
    if ns < _NS_PER_S:
        if ns < 1_000:
            return f"{ns}ns"
        if ns < 1_000_000:
            frac, whole = _fmt_frac(ns, 3)
            return f"{whole}{frac}us"  # ASCII, as users type it
        frac, whole = _fmt_frac(ns, 6)
        return f"{whole}{frac}ms"
    hours, rest = divmod(ns, _NS_PER_H)
    minutes, rest = divmod(rest, _NS_PER_MIN)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if rest:
        frac, whole = _fmt_frac(rest, 9)
        parts.append(f"{whole}{frac}s")
    return "".join(parts)


def format_window(seconds: float) -> str:
    """A keep-alive window in the user's own syntax, the shortest exact Go-style form.

    300 -> '5m', 5400 -> '1h30m', 90 -> '1m30s', 30 -> '30s', 0.5 -> '500ms',
    86400 -> '24h'. Unlike Go's String() it drops zero parts ("5m", not "5m0s"), and it
    round-trips: ``parse_keep_alive(format_window(s)).seconds == s`` for whole
    milliseconds (every fraction it writes is exact in Go's float64 arithmetic).
    """
    _check_seconds(seconds, "keep-alive window")
    return _format_window_ns(_seconds_to_ns(seconds))


def round_up_to_minute(seconds: float) -> int:
    """Whole seconds, a multiple of 60, at least 60.

    Used to snapshot a finite remaining window: rounding up never shortens what is left,
    and whole minutes read well ("4m", not "4m17.2s").
    """
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{seconds} is not a finite number of seconds")
    return max(60, math.ceil(seconds / 60) * 60)
