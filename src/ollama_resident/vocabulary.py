"""The words every command prints with: column headers, durations, action verbs.

One place, so that ``ps``, ``watch``, ``apply``, ``profile`` and every later command
say the same thing the same way. docs/vocabulary.md is the same list for people.

Pure: no I/O, no clock, no rich.

Durations come in two kinds, each with one form:

- *a span of time* (time left, time taken, how long ago): the two largest units,
  space-separated, the second zero-padded so columns line up: ``<1s``, ``42s``,
  ``4m 12s``, ``1h 05m``, ``3d 04h`` (see :func:`span`). A load or an unload that
  took under ten seconds keeps two decimals: ``0.31s``, ``2.40s`` (:func:`took`);
- *a keep-alive setting* (what is sent, what a profile asks): as you would type it
  on the command line and as Ollama reads it: ``30m``, ``1h30m``, ``forever``
  (:meth:`ollama_resident.durations.KeepAlive.describe`).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from ollama_resident.durations import format_countdown

__all__ = [
    "ACTION",
    "CONTEXT",
    "EXCLUSIVE",
    "HOST",
    "ID",
    "KEEP_ALIVE",
    "MODEL",
    "MODELS",
    "NAME",
    "PROCESSOR",
    "REASON",
    "RIGHT_ALIGNED",
    "SIZE",
    "STATE_OVERDUE",
    "UNTIL",
    "ago",
    "clock",
    "plan_action",
    "short_processor",
    "span",
    "time_left",
    "took",
]

# -- column headers: Ollama's own words where it has them (`ollama ps`) ----------------------
NAME = "NAME"
ID = "ID"
SIZE = "SIZE"
PROCESSOR = "PROCESSOR"
CONTEXT = "CONTEXT"  # never NUM_CTX: that is the option's name, not the column's
UNTIL = "UNTIL"
MODEL = "MODEL"
MODELS = "MODELS"
KEEP_ALIVE = "KEEP-ALIVE"  # never keep_alive: that is the API field
ACTION = "ACTION"
REASON = "REASON"
HOST = "HOST"
EXCLUSIVE = "EXCLUSIVE"

RIGHT_ALIGNED = frozenset({SIZE, CONTEXT, MODELS})
"""Numeric columns, right-aligned in every table so units and digits line up."""

STATE_OVERDUE = "busy or stopping"
"""UNTIL for a model listed after its deadline: a request is running on it, and it
either stays (busy past its deadline) or unloads when that ends. Ollama's own `ps`
says "Stopping..." for both."""


def span(seconds: float) -> str:
    """A span of time: ``<1s``, ``42s``, ``4m 12s``, ``1h 05m``, ``3d 04h``.

    >>> span(0.4), span(42), span(1796), span(3900), span(273600)
    ('<1s', '42s', '29m 56s', '1h 05m', '3d 04h')
    """
    return format_countdown(max(0.0, seconds))


def ago(t: datetime, now: datetime) -> str:
    """How long before ``now`` ``t`` was: ``just now``, ``8m 12s ago``, ``2d 03h ago``;
    a time more than a second after ``now`` (a log written by a clock that runs ahead)
    is ``20h 03m ahead of this clock``, never "just now".

    >>> from datetime import timedelta, timezone
    >>> now = datetime(2026, 1, 5, 14, 0, tzinfo=timezone.utc)
    >>> ago(now, now), ago(now - timedelta(seconds=492), now)
    ('just now', '8m 12s ago')
    >>> ago(now + timedelta(hours=20, minutes=3), now)
    '20h 03m ahead of this clock'
    """
    seconds = (now - t).total_seconds()
    if seconds <= -1:
        return f"{span(-seconds)} ahead of this clock"
    if seconds < 1:
        return "just now"
    return f"{span(seconds)} ago"


def clock(t: datetime, tz: tzinfo | None = None, now: datetime | None = None) -> str:
    """``t`` as a local clock time (``tz``, else the machine's): ``14:03:07``, with the date
    (``2026-01-05 14:03:07``) when it is not ``now``'s day.

    >>> from datetime import timedelta, timezone
    >>> t = datetime(2026, 1, 5, 14, 3, 7, tzinfo=timezone.utc)
    >>> clock(t, timezone.utc), clock(t, timezone.utc, now=t + timedelta(days=1))
    ('14:03:07', '2026-01-05 14:03:07')
    """
    local = t.astimezone(tz)
    if now is not None and now.astimezone(tz).date() != local.date():
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return local.strftime("%H:%M:%S")


def time_left(seconds: float) -> str:
    """``29m 56s left``: what is left of a finite keep-alive."""
    return f"{span(seconds)} left"


def took(seconds: float) -> str:
    """How long an operation took: ``0.31s`` and ``2.40s`` below ten seconds, else a span.

    >>> took(0.31), took(2.4), took(12.6), took(75)
    ('0.31s', '2.40s', '12s', '1m 15s')
    """
    if seconds < 10:
        return f"{max(0.0, seconds):.2f}s"
    return span(seconds)


def short_processor(text: str) -> str:
    """A CPU/GPU split in fewer characters, for narrow terminals: the GPU share.

    >>> short_processor("64%/36% CPU/GPU"), short_processor("100% GPU")
    ('36% GPU', '100% GPU')
    """
    if text.endswith(" CPU/GPU") and "/" in text[: -len(" CPU/GPU")]:
        gpu = text[: -len(" CPU/GPU")].split("/", 1)[1]
        return f"{gpu} GPU"
    return text


def plan_action(action: str, pin: bool) -> str:
    """The verb a plan shows: ``repin`` is ``pin`` (to forever) or ``shorten`` (a window).

    The JSON keeps ``repin``; people read what will actually happen.

    >>> plan_action("repin", True), plan_action("repin", False), plan_action("load", False)
    ('pin', 'shorten', 'load')
    """
    if action == "repin":
        return "pin" if pin else "shorten"
    return action
