"""Durations and timestamps: Go's parser and printer, keep-alive input, expires_at.

The Go tables are Go's own (src/time/time_test.go: parseDurationTests,
parseDurationErrorTests, durationTests); the wire table is ollama-contract.md §1.2.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from ollama_resident.durations import (
    FOREVER_THRESHOLD_S,
    MAX_DURATION_NS,
    DurationError,
    KeepAlive,
    format_countdown,
    format_go_duration,
    format_window,
    is_forever,
    keep_alive_from_wire,
    parse_go_duration,
    parse_keep_alive,
    parse_timestamp,
    round_up_to_minute,
    seconds_until,
)

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000
MIN = 60 * S
H = 60 * MIN
MIN_DURATION_NS = -(2**63)
UTC = timezone.utc

HINT = '(use ns, us, ms, s, m or h, e.g. "24h"; "forever" or -1 to pin; 0 to unload)'

# --------------------------------------------------------------------------- Go parser


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        # simple
        ("0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        # sign
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        # decimal
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        ("1.s", 1 * S),
        (".5s", 500 * MS),
        ("1.0s", 1 * S),
        ("1.00s", 1 * S),
        ("1.004s", 1 * S + 4 * MS),
        ("1.0040s", 1 * S + 4 * MS),
        ("100.00100s", 100 * S + 1 * MS),
        # different units
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12\u00b5s", 12 * US),  # U+00B5 micro sign
        ("12\u03bcs", 12 * US),  # U+03BC Greek mu
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * MIN),
        ("16h", 16 * H),
        # composite durations
        ("3h30m", 3 * H + 30 * MIN),
        ("10.5s4m", 4 * MIN + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * MIN + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", 1 * H + 2 * MIN + 3 * S + 4 * MS + 5 * US + 6 * NS),
        ("39h9m14.425s", 39 * H + 9 * MIN + 14 * S + 425 * MS),
        # what Ollama users type (contract §1.2)
        ("5m", 5 * MIN),
        ("1h30m", 90 * MIN),
        ("1.5h", 90 * MIN),
        ("300ms", 300 * MS),
        ("0s", 0),
        ("-1m", -MIN),
        ("5m0s", 5 * MIN),
        # large value
        ("52763797000ns", 52763797000 * NS),
        # more than 9 digits after the decimal point (golang.org/issue/6617)
        ("0.3333333333333333333h", 20 * MIN),
        # 1<<53+1 cannot be stored precisely in a float64
        ("9007199254740993ns", (1 << 53) + 1),
        # largest duration that an int64 holds in nanoseconds
        ("9223372036854775807ns", MAX_DURATION_NS),
        ("9223372036854775.807us", MAX_DURATION_NS),
        ("9223372036s854ms775us807ns", MAX_DURATION_NS),
        ("2562047h47m16.854775807s", MAX_DURATION_NS),
        ("-9223372036854775808ns", MIN_DURATION_NS),
        ("-9223372036854775.808us", MIN_DURATION_NS),
        ("-9223372036s854ms775us808ns", MIN_DURATION_NS),
        # largest negative round-trip value (golang.org/issue/48629)
        ("-2562047h47m16.854775808s", MIN_DURATION_NS),
        # huge string (golang.org/issue/15011)
        ("0.100000000000000000000h", 6 * MIN),
        # the first overflow check in leadingFraction
        ("0.830103483285477580700h", 49 * MIN + 48 * S + 372539827 * NS),
        # Go adds in uint64: 2**63 + 2**63 wraps to 0 and passes its overflow checks
        ("9223372036854775808ns9223372036854775808ns", 0),
    ],
)
def test_parse_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # invalid
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("300", 'time: missing unit in duration "300"'),
        ("-1", 'time: missing unit in duration "-1"'),
        ("5m30", 'time: missing unit in duration "5m30"'),
        ("-", 'time: invalid duration "-"'),
        ("+", 'time: invalid duration "+"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1w", 'time: unknown unit "w" in duration "1w"'),
        ("5M", 'time: unknown unit "M" in duration "5M"'),
        ("1h30x", 'time: unknown unit "x" in duration "1h30x"'),
        ("1\u00b5x", 'time: unknown unit "\\xc2\\xb5x" in duration "1\\xc2\\xb5x"'),
        # no trimming, and Go's own quoting of odd bytes
        (" 5m", 'time: invalid duration " 5m"'),
        ("5m ", 'time: unknown unit "m " in duration "5m "'),
        ("5\tm", 'time: unknown unit "\\x09m" in duration "5\\x09m"'),
        ('1"', 'time: unknown unit "\\"" in duration "1\\""'),
        ("\udc85\udc85", 'time: invalid duration "\\x85\\x85"'),  # bytes 0x85 0x85
        ("\udcffff", 'time: invalid duration "\\xffff"'),
        ("hello \udcffworld", 'time: invalid duration "hello \\xffworld"'),
        ("\ufffd", 'time: invalid duration "\\xef\\xbf\\xbd"'),
        (
            "\ufffd hello \ufffd world",
            'time: invalid duration "\\xef\\xbf\\xbd hello \\xef\\xbf\\xbd world"',
        ),
        ("\u0665s", 'time: invalid duration "\\xd9\\xa5s"'),  # Arabic-Indic five is no digit
        # overflow
        ("9223372036854775810ns", 'time: invalid duration "9223372036854775810ns"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("9223372036854776us", 'time: invalid duration "9223372036854776us"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
        ("99999999999999999999999999h", 'time: invalid duration "99999999999999999999999999h"'),
    ],
)
def test_parse_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


def test_parse_go_duration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="missing unit"):
        parse_go_duration("1")


# --------------------------------------------------------------------------- Go printer


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1 * NS, "1ns"),
        (500 * NS, "500ns"),
        (1 * US, "1\u00b5s"),
        (1100 * NS, "1.1\u00b5s"),
        (2200 * US, "2.2ms"),
        (300 * MS, "300ms"),
        (1500 * MS, "1.5s"),
        (3300 * MS, "3.3s"),
        (4 * MIN + 5 * S, "4m5s"),
        (4 * MIN + 5001 * MS, "4m5.001s"),
        (5 * MIN, "5m0s"),
        (90 * MIN, "1h30m0s"),
        (24 * H, "24h0m0s"),
        (5 * H + 6 * MIN + 7001 * MS, "5h6m7.001s"),
        (8 * MIN + 1 * NS, "8m0.000000001s"),
        (-MIN, "-1m0s"),
        (-1 * NS, "-1ns"),
        (MAX_DURATION_NS, "2562047h47m16.854775807s"),
        (MIN_DURATION_NS, "-2562047h47m16.854775808s"),
    ],
)
def test_format_go_duration(ns: int, text: str) -> None:
    assert format_go_duration(ns) == text


@pytest.mark.parametrize("ns", [MAX_DURATION_NS + 1, MIN_DURATION_NS - 1])
def test_format_go_duration_out_of_range(ns: int) -> None:
    with pytest.raises(ValueError, match="range"):
        format_go_duration(ns)


def test_go_format_parse_round_trip() -> None:
    rng = random.Random(20260821)
    values = [0, 1, -1, MAX_DURATION_NS, MIN_DURATION_NS, 999, 1000, 999_999, 10**9 - 1]
    values += [rng.randrange(MIN_DURATION_NS, MAX_DURATION_NS + 1) for _ in range(2000)]
    values += [rng.randrange(-(10**12), 10**12) for _ in range(2000)]
    for ns in values:
        assert parse_go_duration(format_go_duration(ns)) == ns, ns


# --------------------------------------------------------------------------- wire (§1.2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # absent or null: unset
        (None, None),
        # number >= 0: seconds, floats allowed
        (42, KeepAlive("finite", 42 * S)),
        (42.5, KeepAlive("finite", 42 * S + 500 * MS)),
        (0.4, KeepAlive("finite", 400 * MS)),
        (0, KeepAlive.unload()),
        (0.0, KeepAlive.unload()),
        (-0.0, KeepAlive.unload()),
        (300, KeepAlive("finite", 5 * MIN)),
        # number < 0: forever
        (-1, KeepAlive.forever()),
        (-3.14, KeepAlive.forever()),
        (-0.5, KeepAlive.forever()),
        (-1e300, KeepAlive.forever()),
        # number >= 2**63 ns: float-to-int overflow, negative on amd64, unloads when idle
        (9.3e9, KeepAlive.unload()),
        (2**63 / 1e9, KeepAlive.unload()),
        (10**12, KeepAlive.unload()),
        # just below the overflow
        (9.2e9, KeepAlive("finite", 9_200_000_000 * S)),
        # strings: time.ParseDuration
        ("5m", KeepAlive("finite", 5 * MIN)),
        ("1h30m", KeepAlive("finite", 90 * MIN)),
        ("1.5h", KeepAlive("finite", 90 * MIN)),
        ("300ms", KeepAlive("finite", 300 * MS)),
        ("0s", KeepAlive.unload()),
        ("0", KeepAlive.unload()),
        ("-0", KeepAlive.unload()),
        # negative string: forever
        ("-1s", KeepAlive.forever()),
        ("-1m", KeepAlive.forever()),
        ("-2562047h47m16.854775808s", KeepAlive.forever()),
        # the maximum is a pin in all but name
        ("2562047h47m16.854775807s", KeepAlive.forever()),
    ],
)
def test_keep_alive_from_wire(value: object, expected: KeepAlive | None) -> None:
    assert keep_alive_from_wire(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # string without a unit
        ("300", 'time: missing unit in duration "300"'),
        ("-1", 'time: missing unit in duration "-1"'),
        # unknown unit
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1w", 'time: unknown unit "w" in duration "1w"'),
        # empty or spaced: no trimming
        ("", 'time: invalid duration ""'),
        (" 5m", 'time: invalid duration " 5m"'),
        # beyond about 2562047h
        ("3000000h", 'time: invalid duration "3000000h"'),
        # bool, array, object
        (True, "Unsupported type: 'bool'"),
        (False, "Unsupported type: 'bool'"),
        ([], "Unsupported type: '[]interface {}'"),
        (["5m"], "Unsupported type: '[]interface {}'"),
        ({}, "Unsupported type: 'map[string]interface {}'"),
        ({"seconds": 5}, "Unsupported type: 'map[string]interface {}'"),
        # not JSON at all
        (10**400, "json: cannot unmarshal number"),
        (math.nan, "invalid keep_alive: nan is not a JSON number"),
        (math.inf, "invalid keep_alive: inf is not a JSON number"),
    ],
)
def test_keep_alive_from_wire_errors(value: object, message: str) -> None:
    with pytest.raises(DurationError) as info:
        keep_alive_from_wire(value)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------- user input


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # words, any case, surrounding space
        ("forever", KeepAlive.forever()),
        ("FOREVER", KeepAlive.forever()),
        (" Forever\n", KeepAlive.forever()),
        ("inf", KeepAlive.forever()),
        ("infinite", KeepAlive.forever()),
        ("Infinity", KeepAlive.forever()),
        ("never", KeepAlive.forever()),
        # negative numbers and durations pin
        ("-1", KeepAlive.forever()),
        ("-1.5", KeepAlive.forever()),
        ("-.5", KeepAlive.forever()),
        ("-0.000000000001", KeepAlive.forever()),
        ("-99999999999999999999999", KeepAlive.forever()),
        ("-1m", KeepAlive.forever()),
        ("-1s", KeepAlive.forever()),
        ("-2562047h47m16.854775808s", KeepAlive.forever()),
        # zero unloads
        ("0", KeepAlive.unload()),
        ("0s", KeepAlive.unload()),
        ("-0", KeepAlive.unload()),
        ("+0", KeepAlive.unload()),
        ("0m", KeepAlive.unload()),
        ("0.0", KeepAlive.unload()),
        ("-0.0", KeepAlive.unload()),
        ("000", KeepAlive.unload()),
        ("0h0m0s", KeepAlive.unload()),
        # bare numbers are seconds
        ("300", KeepAlive("finite", 5 * MIN)),
        (" 300 ", KeepAlive("finite", 5 * MIN)),
        ("+300", KeepAlive("finite", 5 * MIN)),
        ("1.5", KeepAlive("finite", 1500 * MS)),
        ("0.5", KeepAlive("finite", 500 * MS)),
        (".25", KeepAlive("finite", 250 * MS)),
        ("5.", KeepAlive("finite", 5 * S)),
        ("0.000000001", KeepAlive("finite", 1 * NS)),
        ("1.1234567899", KeepAlive("finite", 1 * S + 123456789)),  # beyond ns: truncated
        ("86400", KeepAlive("finite", 24 * H)),
        ("9223372036.854775806", KeepAlive("finite", MAX_DURATION_NS - 1)),
        ("9223372036.854775807", KeepAlive.forever()),
        # Go durations
        ("5m", KeepAlive("finite", 5 * MIN)),
        ("1h30m", KeepAlive("finite", 90 * MIN)),
        ("1.5h", KeepAlive("finite", 90 * MIN)),
        ("300ms", KeepAlive("finite", 300 * MS)),
        ("24h", KeepAlive("finite", 24 * H)),
        ("5m0s", KeepAlive("finite", 5 * MIN)),
        ("+5m", KeepAlive("finite", 5 * MIN)),
        ("  10m\t", KeepAlive("finite", 10 * MIN)),
        ("2\u00b5s", KeepAlive("finite", 2 * US)),
        ("2562047h", KeepAlive("finite", 2562047 * H)),
    ],
)
def test_parse_keep_alive(text: str, expected: KeepAlive) -> None:
    assert parse_keep_alive(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1d", f'invalid keep-alive "1d": unknown unit "d" {HINT}'),
        (" 1d ", f'invalid keep-alive "1d": unknown unit "d" {HINT}'),
        ("2w", f'invalid keep-alive "2w": unknown unit "w" {HINT}'),
        ("5M", f'invalid keep-alive "5M": unknown unit "M" {HINT}'),
        ("5 m", f'invalid keep-alive "5 m": unknown unit " m" {HINT}'),
        ("1e3", f'invalid keep-alive "1e3": unknown unit "e" {HINT}'),
        ("5m30", f'invalid keep-alive "5m30": missing unit {HINT}'),
        ("abc", f'invalid keep-alive "abc": invalid duration {HINT}'),
        ("nan", f'invalid keep-alive "nan": invalid duration {HINT}'),
        ("-inf", f'invalid keep-alive "-inf": invalid duration {HINT}'),
        ("forever!", f'invalid keep-alive "forever!": invalid duration {HINT}'),
        ("--1", f'invalid keep-alive "--1": invalid duration {HINT}'),
        ("-", f'invalid keep-alive "-": invalid duration {HINT}'),
        (".", f'invalid keep-alive ".": invalid duration {HINT}'),
        ("1.2.3", f'invalid keep-alive "1.2.3": missing unit {HINT}'),
        ("1,5", f'invalid keep-alive "1,5": unknown unit "," {HINT}'),
        ("", f'invalid keep-alive "": it is empty {HINT}'),
        ("   ", f'invalid keep-alive "": it is empty {HINT}'),
        ("\x1b[31m", f'invalid keep-alive "\\x1b[31m": invalid duration {HINT}'),
    ],
)
def test_parse_keep_alive_rejects(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_keep_alive(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "text",
    ["3000000h", "9223372037", "9223372036.854775808", "99999999999999999999999", "2562048h"],
)
def test_parse_keep_alive_too_long(text: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_keep_alive(text)
    assert str(info.value) == (
        f'invalid keep-alive "{text}": invalid duration, longer than the maximum '
        '2562047h47m16.854775807s (about 292 years); use "forever" or -1 to pin'
    )


# --------------------------------------------------------------------------- KeepAlive


def test_keep_alive_constructors() -> None:
    assert KeepAlive.forever() == KeepAlive("forever", MAX_DURATION_NS)
    assert KeepAlive.unload() == KeepAlive("unload", 0)
    assert KeepAlive.of_seconds(300) == KeepAlive("finite", 5 * MIN)
    assert KeepAlive.of_seconds(0.3) == KeepAlive("finite", 300 * MS)
    assert KeepAlive.of_seconds(0) == KeepAlive.unload()
    assert KeepAlive.of_seconds(-1) == KeepAlive.forever()
    assert KeepAlive.of_seconds(-0.001) == KeepAlive.forever()
    # the decimal as written, not the float's binary expansion (...854000092 ns)
    assert KeepAlive.of_seconds(9223372036.854) == KeepAlive("finite", 9223372036854000000)
    assert KeepAlive.of_seconds(1e-10) == KeepAlive.unload()  # below a nanosecond


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, 1e10])
def test_keep_alive_of_seconds_rejects(seconds: float) -> None:
    with pytest.raises(DurationError, match="invalid keep-alive"):
        KeepAlive.of_seconds(seconds)


@pytest.mark.parametrize(
    ("kind", "ns"),
    [
        ("forever", 0),
        ("forever", -1),
        ("unload", 1),
        ("finite", 0),
        ("finite", -5),
        ("finite", MAX_DURATION_NS),
        ("finite", MAX_DURATION_NS + 1),
        ("sometimes", 5),
        ("unload", False),
    ],
)
def test_keep_alive_invariants(kind: str, ns: int) -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        KeepAlive(kind, ns)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keep_alive", "wire", "seconds", "described"),
    [
        (KeepAlive.forever(), -1, None, "forever"),
        (KeepAlive.unload(), 0, 0.0, "unload"),
        (KeepAlive("finite", 5 * MIN), "5m0s", 300.0, "5m"),
        (KeepAlive("finite", 90 * MIN), "1h30m0s", 5400.0, "1h30m"),
        (KeepAlive("finite", 90 * S), "1m30s", 90.0, "1m30s"),
        (KeepAlive("finite", 500 * MS), "500ms", 0.5, "500ms"),
        (KeepAlive("finite", 24 * H), "24h0m0s", 86400.0, "24h"),
        (KeepAlive("finite", 1 * NS), "1ns", 1e-9, "1ns"),
    ],
)
def test_keep_alive_outputs(
    keep_alive: KeepAlive, wire: int | str, seconds: float | None, described: str
) -> None:
    assert keep_alive.to_wire() == wire
    assert type(keep_alive.to_wire()) is type(wire)  # -1 the number, never "-1"
    assert keep_alive.seconds == seconds
    assert keep_alive.describe() == described


def test_wire_form_reads_back_identically() -> None:
    """What we send is what Ollama will read."""
    for text in ["forever", "0", "5m", "1h30m", "0.5", "300ms", "1.000000001", "2562047h"]:
        keep_alive = parse_keep_alive(text)
        assert keep_alive_from_wire(keep_alive.to_wire()) == keep_alive


def test_keep_alive_is_truthy_and_hashable() -> None:
    assert KeepAlive.unload()
    assert len({KeepAlive.forever(), KeepAlive.forever(), KeepAlive.unload()}) == 2


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2319-03-04T01:31:06.21506357Z",
            datetime(2319, 3, 4, 1, 31, 6, 215063, tzinfo=UTC),
        ),
        (
            "2318-12-01T04:47:16.854775807-07:00",
            datetime(2318, 12, 1, 4, 47, 16, 854775, tzinfo=timezone(timedelta(hours=-7))),
        ),
        (
            "2317-09-11T11:47:16.854775807Z",
            datetime(2317, 9, 11, 11, 47, 16, 854775, tzinfo=UTC),
        ),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        (
            "2026-08-21T14:05:09.5+02:00",
            datetime(2026, 8, 21, 14, 5, 9, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2026-08-21T12:00:00.000000999+05:30",
            datetime(2026, 8, 21, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        ("2026-08-21T12:00:00.123456Z", datetime(2026, 8, 21, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-08-21T12:00:00.1Z", datetime(2026, 8, 21, 12, 0, 0, 100000, tzinfo=UTC)),
        ("2026-08-21T12:00:00-00:00", datetime(2026, 8, 21, 12, tzinfo=UTC)),
        (
            "2024-02-29T23:59:59+23:59",
            datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone(timedelta(hours=23, minutes=59))),
        ),
        ("9999-12-31T23:59:59.999999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    got = parse_timestamp(text)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-08-21",
        "2026-08-21T12:00:00",  # no zone
        "2026-08-21 12:00:00Z",
        "2026-08-21t12:00:00Z",
        "2026-08-21T12:00:00z",
        "2026-08-21T12:00:00+0200",
        "2026-08-21T12:00:00+02",
        "2026-08-21T12:00:00.Z",
        "2026-08-21T12:00:00.1234567890Z",  # 10 fraction digits
        "2026-08-21T12:00Z",
        "2026-8-21T12:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-08-21T24:00:00Z",
        "2026-08-21T12:60:00Z",
        "2026-08-21T12:00:60Z",  # Go rejects leap seconds too
        "0000-01-01T00:00:00Z",  # Go's year 0 has no Python datetime
        "2026-08-21T12:00:00+24:00",
        "2026-08-21T12:00:00+02:60",
        " 2026-08-21T12:00:00Z",
        "2026-08-21T12:00:00Z ",
        "2026-08-21T12:00:00Z\n",
        "\u0662026-08-21T12:00:00Z",  # a non-ASCII digit
        "+2026-08-21T12:00:00Z",
        "12026-08-21T12:00:00Z",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(text)


@pytest.mark.parametrize("value", [None, 1724241600, b"2026-08-21T12:00:00Z"])
def test_parse_timestamp_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(value)  # type: ignore[arg-type]


def test_pin_lands_292_years_ahead() -> None:
    """Contract §3.2: idle at 2026-08-21T12:00Z + MaxInt64 ns -> 2318-12-01T11:47:16.854775807Z."""
    idle = parse_timestamp("2026-08-21T12:00:00Z")
    expires = idle + timedelta(microseconds=MAX_DURATION_NS // 1000)
    assert expires == parse_timestamp("2318-12-01T11:47:16.854775807Z")
    assert is_forever(expires, idle)
    assert seconds_until(expires, idle) == pytest.approx(MAX_DURATION_NS / 1e9)


NOW = datetime(2026, 8, 21, 12, 0, 0, tzinfo=UTC)


def test_seconds_until() -> None:
    assert seconds_until(NOW + timedelta(minutes=5), NOW) == 300.0
    assert seconds_until(NOW - timedelta(seconds=1.5), NOW) == -1.5
    assert seconds_until(NOW, NOW) == 0.0
    # offsets do not matter, instants do
    local = parse_timestamp("2026-08-21T05:05:00-07:00")
    assert seconds_until(local, NOW) == 300.0
    assert seconds_until(parse_timestamp("0001-01-01T00:00:00Z"), NOW) < 0


@pytest.mark.parametrize(
    ("delta", "forever"),
    [
        (timedelta(seconds=FOREVER_THRESHOLD_S), True),
        (timedelta(seconds=FOREVER_THRESHOLD_S, microseconds=1), True),
        (timedelta(seconds=FOREVER_THRESHOLD_S) - timedelta(microseconds=1), False),
        (timedelta(days=365 * 20), True),
        (timedelta(days=365 * 20 - 1), False),
        (timedelta(days=365 * 292), True),
        (timedelta(hours=2562047), True),  # the longest finite keep-alive also reads as pinned
        (timedelta(days=3650), False),
        (timedelta(minutes=5), False),
        (timedelta(0), False),
        (timedelta(seconds=-1), False),
    ],
)
def test_is_forever(delta: timedelta, forever: bool) -> None:
    assert is_forever(NOW + delta, NOW) is forever


def test_is_forever_real_expires_at_values() -> None:
    pinned = parse_timestamp("2318-12-01T04:47:16.854775807-07:00")
    assert is_forever(pinned, NOW)
    assert not is_forever(parse_timestamp("2026-08-21T12:05:00Z"), NOW)
    assert not is_forever(parse_timestamp("0001-01-01T00:00:00Z"), NOW)
    # a pin is still a pin when the server clock and ours disagree by a year
    assert is_forever(pinned, NOW + timedelta(days=365))


# --------------------------------------------------------------------------- countdowns


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "<1s"),
        (0.999, "<1s"),
        (1, "1s"),
        (1.999, "1s"),
        (42, "42s"),
        (59.99, "59s"),
        (60, "1m 00s"),
        (252, "4m 12s"),
        (299.5, "4m 59s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (3900, "1h 05m"),
        (3959, "1h 05m"),
        (86399, "23h 59m"),
        (86400, "1d 00h"),
        (3 * 86400 + 4 * 3600 + 59 * 60, "3d 04h"),
        (400 * 86400, "400d 00h"),
    ],
)
def test_format_countdown(seconds: float, text: str) -> None:
    assert format_countdown(seconds) == text


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, math.inf])
def test_format_countdown_rejects(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_countdown(seconds)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (300, "5m"),
        (5400, "1h30m"),
        (90, "1m30s"),
        (30, "30s"),
        (0.5, "500ms"),
        (86400, "24h"),
        (0, "0s"),
        (1, "1s"),
        (60, "1m"),
        (3600, "1h"),
        (3601, "1h1s"),
        (3600.5, "1h0.5s"),
        (61.25, "1m1.25s"),
        (1.5, "1.5s"),
        (0.001, "1ms"),
        (0.0015, "1.5ms"),
        (0.000001, "1us"),
        (0.0000015, "1.5us"),
        (1e-9, "1ns"),
        (0.3, "300ms"),
        (604800, "168h"),
        (6.3e9, "1750000h"),  # no float noise in the nanoseconds
        (9223372036.854, "2562047h47m16.854s"),
    ],
)
def test_format_window(seconds: float, text: str) -> None:
    assert format_window(seconds) == text


@pytest.mark.parametrize("seconds", [-1, -0.5, math.nan, math.inf])
def test_format_window_rejects(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_window(seconds)


def test_format_window_round_trips_whole_milliseconds() -> None:
    rng = random.Random(11434)
    max_ms = MAX_DURATION_NS // MS
    millis = list(range(5000))
    millis += [60_000 * k for k in range(2000)] + [3_600_000 * k for k in range(500)]
    millis += [rng.randrange(max_ms) for _ in range(3000)]  # anything up to ~292 years
    millis += [rng.randrange(86_400_000) for _ in range(3000)]  # within a day
    millis += [max_ms]
    for ms in millis:
        seconds = ms / 1000
        text = format_window(seconds)
        assert parse_keep_alive(text).seconds == seconds, (ms, text)
        if ms:
            assert KeepAlive.of_seconds(seconds).describe() == text, (ms, text)


@pytest.mark.parametrize(
    ("seconds", "rounded"),
    [
        (0, 60),
        (-5, 60),
        (0.001, 60),
        (59.9, 60),
        (60, 60),
        (60.0001, 120),
        (119, 120),
        (120, 120),
        (299.7, 300),
        (3600, 3600),
        (3601, 3660),
        (86400.5, 86460),
    ],
)
def test_round_up_to_minute(seconds: float, rounded: int) -> None:
    got = round_up_to_minute(seconds)
    assert got == rounded
    assert isinstance(got, int)


@pytest.mark.parametrize("seconds", [math.nan, math.inf])
def test_round_up_to_minute_rejects(seconds: float) -> None:
    with pytest.raises(ValueError):
        round_up_to_minute(seconds)


def test_a_window_is_a_duration_not_a_keep_alive() -> None:
    from ollama_resident.durations import DurationError, parse_window

    assert parse_window("2h") == 7200
    assert parse_window("90") == 90
    with pytest.raises(DurationError) as exc:
        parse_window("5x")
    assert (
        str(exc.value)
        == 'invalid duration "5x": unknown unit "x" (use s, m or h, e.g. "30m" or "2h")'
    )
    for bad in ("0", "-1", "forever"):
        with pytest.raises(DurationError):
            parse_window(bad)


def test_the_keep_alive_hint_offers_only_what_the_option_takes() -> None:
    from ollama_resident.durations import DurationError

    with pytest.raises(DurationError) as exc:
        parse_keep_alive("5x", unload_ok=False)
    assert "0 to unload" not in str(exc.value)
    assert str(exc.value).endswith('"forever" or -1 to pin)')
