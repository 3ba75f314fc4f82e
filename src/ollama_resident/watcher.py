"""Poll ``/api/ps`` on an interval and turn the changes into events.

:class:`Watcher` is the loop behind ``watch`` and ``guard``, with no terminal code: it
polls, keeps going while the server is down (``server_down`` once, ``server_up`` with the
version when it answers again), classifies every change with :func:`events.diff` and
appends the events to the journal. What to show is the caller's business
(``on_events``).

A server that has not answered once since the recording began is not "down": nothing
was seen up. Its first failure is ``server_unreachable`` (said once), and its first
answer after that is ``server_up`` with reason ``first_answer``. Only a server that
answered and then stopped is ``server_down``.

It also reads what the tool's own commands (``preload``, ``pin``, ``apply``, ``unload``,
another ``guard``, in other processes) append to the journal, so that their unloads read
as "stopped by ollama-resident unload" rather than "stopped by some client". An in-process
caller (``guard``) reports its actions with :meth:`Watcher.note_action` and journals its
own events with :meth:`Watcher.record`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Protocol

from ollama_resident import events as ev
from ollama_resident.errors import (
    ApiError,
    RequestTimeout,
    ResidentError,
    ServerTooOld,
    ServerUnreachable,
)
from ollama_resident.journal import Journal
from ollama_resident.models import PsSnapshot

__all__ = ["PsClient", "Watcher"]

# /api/version is asked for again every this many polls: a restart between two polls
# that swapped the binary shows as a new version even if no poll failed.
VERSION_EVERY = 30
_OWN_ACTION_TTL = timedelta(minutes=2)
_RECENT = 200


class PsClient(Protocol):
    """What the watcher needs from :class:`~ollama_resident.client.OllamaClient`."""

    def ps(self) -> PsSnapshot: ...

    def version(self) -> str: ...


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Watcher:
    """Polls one server; every call to :meth:`poll_once` returns the new events.

    ``host`` is the server as it may be printed (it goes into every event).
    ``journal`` None means nothing is written (and no own actions are read).
    ``settle_s`` is how long an early unload with no visible cause waits for the model
    that evicted it (see :data:`events.DEFAULT_SETTLE_S`). ``source`` names the recorder
    in ``recording_started`` (``watch``, ``guard``).
    """

    def __init__(
        self,
        client: PsClient,
        interval: float = 1.0,
        host: str = "",
        *,
        journal: Journal | None = None,
        clock: Callable[[], datetime] = _utcnow,
        settle_s: float = ev.DEFAULT_SETTLE_S,
        max_loaded: int | None = None,
        source: str = "watch",
        version_every: int = VERSION_EVERY,
        enrich: Callable[[list[ev.Event]], list[ev.Event]] | None = None,
    ) -> None:
        self.client = client
        self.interval = max(0.0, interval)
        self.host = host
        self.journal = journal
        self.clock = clock
        self.max_loaded = max_loaded
        self.source = source
        self.version_every = max(1, version_every)
        # Adds what another source knows (the server log) before events are recorded.
        self.enrich = enrich
        self.memory = ev.Memory(settle_s=settle_s)
        self.snapshot: PsSnapshot | None = None  # the last answer
        self.up = True  # the last poll was answered (True before the first: nothing failed)
        self.answered = False  # any poll answered since the recording began
        self.unreachable_since: datetime | None = None  # failing since then, never answered
        self.version: str | None = None
        self.last_error: str | None = None
        self.last_exception: ResidentError | None = None  # what the last failed poll raised
        self.polls = 0
        self.recent: deque[ev.Event] = deque(maxlen=_RECENT)
        self.journal_error: str | None = None
        self._started = False
        self._stopped = False
        self._own: deque[ev.OwnAction] = deque(maxlen=256)
        self._commands: deque[ev.Event] = deque(maxlen=256)  # other processes' own actions
        self._written: deque[tuple[str, str | None, str, str | None]] = deque(maxlen=1024)
        self._journal_offset = journal.size() if journal is not None else 0

    # -- inputs ------------------------------------------------------------------------------

    def note_action(self, action: ev.OwnAction) -> None:
        """Tell the watcher about something this process did (a guard's re-pin)."""
        self._own.append(action)

    def record(self, events: list[ev.Event]) -> None:
        """Journal events this process made besides the polls' (a guard's own actions)."""
        self._emit(list(events))

    def _own_actions(self, now: datetime) -> Sequence[ev.OwnAction]:
        if self.journal is not None:
            try:
                new, self._journal_offset = self.journal.read_from(self._journal_offset)
            except OSError:
                new = []
            # What this process wrote itself comes back here too: it is no other
            # command's action (else our own "loaded by guard" would hide the next ones).
            written = set(self._written)
            theirs = [e for e in new if e.host == self.host and _key(e) not in written]
            for action in ev.own_actions_from(theirs):
                self._own.append(action)
            self._commands.extend(
                e for e in theirs if e.model and (e.by_tool or (e.detail.get("seen_by") == ev.TOOL))
            )
        while self._own and now - self._own[0].time > _OWN_ACTION_TTL:
            self._own.popleft()
        while self._commands and now - self._commands[0].time > _OWN_ACTION_TTL:
            self._commands.popleft()
        return tuple(self._own)

    # -- the loop ----------------------------------------------------------------------------

    @property
    def pending(self) -> list[str]:
        """Models gone early whose cause is still being settled."""
        return sorted(self.memory.pending)

    @property
    def down_since(self) -> datetime | None:
        return self.memory.down_since

    def poll_once(self) -> list[ev.Event]:
        """One ``/api/ps`` (and now and then ``/api/version``); the events it reveals.

        Never raises for a server that is down or answers with an error; raises
        ServerTooOld (no ``/api/ps``) since watching cannot work at all then.
        """
        out: list[ev.Event] = []
        at = self.clock()
        try:
            snap = self.client.ps()
        except ServerTooOld:
            raise
        except (ServerUnreachable, RequestTimeout, ApiError) as exc:
            out.extend(self._start_events(at, None))
            self.last_error = str(exc)
            self.last_exception = exc
            was_up, self.up = self.up, False
            if not self.answered:
                # Never seen up: it did not go down, it has not been reached (yet).
                if self.unreachable_since is None:
                    self.unreachable_since = at
                    out.append(ev.unreachable_event(self.host, at, str(exc)))
                return self._emit(out)
            down = ev.diff(
                self.snapshot,
                None,
                host=self.host,
                prev_up=was_up,
                curr_up=False,
                memory=self.memory,
                max_loaded=self.max_loaded,
                at=at,
            )
            for e in down:
                if e.event == "server_down":
                    e = dataclasses.replace(e, detail={**e.detail, "error": str(exc)})
                out.append(e)
            return self._emit(out)

        version = self.version
        if not self.up or version is None or self.polls % self.version_every == 0:
            with contextlib.suppress(ServerUnreachable, RequestTimeout, ApiError):
                version = self.client.version() or version
        out.extend(self._start_events(snap.taken_at, version))
        if self.unreachable_since is not None:
            out.append(
                ev.first_answer_event(self.host, snap.taken_at, version, self.unreachable_since)
            )
            self.unreachable_since = None
        out.extend(
            ev.diff(
                self.snapshot,
                snap,
                host=self.host,
                prev_up=self.up or not self.answered,  # a first answer is no comeback
                curr_up=True,
                version=version,
                prev_version=self.version,
                own_actions=self._own_actions(snap.taken_at),
                memory=self.memory,
                max_loaded=self.max_loaded,
            )
        )
        self.snapshot = snap
        self.up = True
        self.answered = True
        self.version = version
        self.last_error = None
        self.last_exception = None
        self.polls += 1
        return self._emit(out)

    def _start_events(self, at: datetime, version: str | None) -> list[ev.Event]:
        if self._started:
            return []
        self._started = True
        return [
            ev.recording_event(
                "recording_started",
                host=self.host,
                time=at,
                source=self.source,
                interval_s=self.interval,
                version=version,
                pid=os.getpid(),
            )
        ]

    def stop(self) -> list[ev.Event]:
        """The closing events: pending unloads settled as they stand, ``recording_stopped``."""
        if self._stopped or not self._started:
            self._stopped = True
            return []
        self._stopped = True
        at = self.clock()
        out = ev.settle_all(self.memory, host=self.host, at=at)
        out.append(
            ev.recording_event(
                "recording_stopped",
                host=self.host,
                time=at,
                source=self.source,
                polls=self.polls,
                pid=os.getpid(),
            )
        )
        return self._emit(out)

    def run(
        self,
        on_events: Callable[[list[ev.Event]], None],
        stop_event: threading.Event | None = None,
    ) -> None:
        """Poll until ``stop_event`` is set (or KeyboardInterrupt), then :meth:`stop`.

        Each poll starts ``interval`` seconds after the previous one started, so the
        cadence does not drift with the request time.
        """
        stop_event = stop_event or threading.Event()
        try:
            while not stop_event.is_set():
                started = time.monotonic()
                new = self.poll_once()
                if new:
                    on_events(new)
                stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            closing = self.stop()
            if closing:
                on_events(closing)

    # -- output ------------------------------------------------------------------------------

    def _journaled_by_command(self, e: ev.Event) -> bool:
        """The same fact the command that caused it (``pin``, ``unload``, ``apply`` in
        another process) has journaled already: same model, event, reason and command,
        recorded within one poll interval (plus slack) of it. Anything else is new.
        """
        if e.model is None:
            return False
        window = max(self.interval, 1.0) + ev.OWN_SLACK_S
        if e.event == "unloaded" and not e.by_tool:
            # A poll's unload that a command has journaled already (a load's eviction,
            # a stop): the command knows the cause; the poll's guess is not kept.
            return any(
                c.model == e.model
                and c.event == "unloaded"
                and abs((e.time - c.time).total_seconds()) <= window
                for c in self._commands
            )
        if not e.by_tool:
            return False
        return any(
            c.model == e.model
            and ev.same_change(c, e)
            and c.detail.get("action") == e.detail.get("action")
            and abs((e.time - c.time).total_seconds()) <= window
            for c in self._commands
        )

    def _emit(self, out: list[ev.Event]) -> list[ev.Event]:
        if not out:
            return out
        if self.enrich is not None:
            out = self.enrich(out)
        self.recent.extend(out)
        if self.journal is not None:
            to_write = [e for e in out if not self._journaled_by_command(e)]
            self._written.extend(_key(e) for e in to_write)
            try:
                self.journal.record(to_write)
                self.journal_error = None
            except OSError as exc:
                self.journal_error = f"cannot write the journal {self.journal.path}: {exc}"
        return out


def _key(e: ev.Event) -> tuple[str, str | None, str, str | None]:
    """What tells one journal line from another as it is read back (times are to the ms)."""
    return (ev.format_time(e.time), e.model, e.event, e.reason)
