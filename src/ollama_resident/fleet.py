"""Many Ollama servers at once: ask them all concurrently, and say what each one answered.

One thread per host, so N hosts take about as long as the slowest, and a host that
is down (or hangs until its timeout) delays nobody else. A :class:`ResidentError`
from one host is that host's result, not the command's: :func:`exit_code` then says
what happened overall (3 only when every host was unreachable; 1 when some failed).

No typer, no rich, no httpx: the work per host is the caller's function.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ollama_resident.errors import ExitCode, ResidentError
from ollama_resident.host import Host

__all__ = ["HostResult", "each_host", "exit_code", "group_by_host", "run_together", "unique_hosts"]

T = TypeVar("T")


@dataclass(frozen=True)
class HostResult(Generic[T]):
    """What one host gave: ``value``, or the ``error`` that stopped its work."""

    host: Host
    value: T | None = None
    error: ResidentError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unreachable(self) -> bool:
        return self.error is not None and self.error.exit_code == ExitCode.UNREACHABLE


def unique_hosts(hosts: Iterable[Host]) -> list[Host]:
    """``hosts`` without repeats (same URL), in first-seen order."""
    seen: dict[str, Host] = {}
    for h in hosts:
        seen.setdefault(h.url, h)
    return list(seen.values())


def each_host(hosts: Sequence[Host], work: Callable[[Host], T]) -> list[HostResult[T]]:
    """``work(host)`` for every host at once; results in the order of ``hosts``.

    A ResidentError raised by ``work`` becomes that host's ``error``; anything else
    (a bug, KeyboardInterrupt in the caller) propagates. A single host runs in the
    calling thread.
    """

    def one(host: Host) -> HostResult[T]:
        try:
            return HostResult(host, work(host))
        except ResidentError as exc:
            return HostResult(host, error=exc)

    if len(hosts) == 1:
        return [one(hosts[0])]
    results: list[HostResult[T] | None] = [None] * len(hosts)
    crashes: list[BaseException] = []

    def run(i: int, host: Host) -> None:
        try:
            results[i] = one(host)
        except BaseException as exc:  # re-raised in the caller's thread below
            crashes.append(exc)

    run_together([functools.partial(run, i, h) for i, h in enumerate(hosts)])
    if crashes:
        raise crashes[0]
    return [r for r in results if r is not None]


def run_together(tasks: Sequence[Callable[[], object]], *, join_timeout: float = 1.0) -> None:
    """Run each task in its own daemon thread and wait for all of them.

    The wait wakes up often, so Ctrl-C (or SIGTERM raised as KeyboardInterrupt) in
    the main thread is handled at once; the tasks are then the caller's to stop (a
    shared :class:`threading.Event`), and are given ``join_timeout`` seconds each.
    """
    threads = [
        threading.Thread(target=t, daemon=True, name=f"host-{i}") for i, t in enumerate(tasks)
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)
    except BaseException:
        for t in threads:
            t.join(join_timeout)
        raise


def exit_code(results: Sequence[HostResult[Any]], *, failed: bool = False) -> ExitCode:
    """0 all answered (and ``failed`` is false); 3 every host unreachable; else 1.

    ``failed`` says whether some answered host reported a failed operation. A usage
    error from every host (the same bad input) is a usage error.
    """
    errors = [r.error for r in results if r.error is not None]
    if not errors:
        return ExitCode.FAILED if failed else ExitCode.OK
    if len(errors) == len(results):
        codes = {e.exit_code for e in errors}
        if codes == {ExitCode.UNREACHABLE}:
            return ExitCode.UNREACHABLE
        if codes == {ExitCode.USAGE}:
            return ExitCode.USAGE
    return ExitCode.FAILED


R = TypeVar("R")


def group_by_host(
    groups: Iterable[tuple[str, Sequence[Host], Sequence[R]]],
    key: Callable[[R], str],
    same: Callable[[R, R], bool],
) -> list[tuple[Host, list[R]]]:
    """Merge ``(source, hosts, items)`` groups into one item list per host.

    ``source`` names where the items came from (``profile 'work'``) for the error
    when two sources want the same ``key`` (a model) on one host in ways that are
    not ``same``: a :class:`~ollama_resident.errors.UsageError` naming both.

    >>> from ollama_resident.host import parse_host
    >>> a, b = parse_host("a"), parse_host("b")
    >>> [(h.host, items) for h, items in group_by_host(
    ...     [("x", [a], ["m", "n"]), ("y", [a, b], ["m"])], key=str, same=str.__eq__)]
    [('a', ['m', 'n']), ('b', ['m'])]
    """
    from ollama_resident.errors import UsageError

    order: dict[str, Host] = {}
    merged: dict[str, dict[str, tuple[str, R]]] = {}
    for source, hosts, items in groups:
        for host in hosts:
            order.setdefault(host.url, host)
            slot = merged.setdefault(host.url, {})
            for item in items:
                k = key(item)
                if k in slot:
                    first, existing = slot[k]
                    if not same(existing, item):
                        raise UsageError(
                            f"{first} and {source} both keep {k} on {host.display}, differently",
                            hint="give the model one keep-alive and context, or guard the "
                            "profiles on different hosts",
                        )
                    continue
                slot[k] = (source, item)
    return [(order[url], [item for _s, item in slot.values()]) for url, slot in merged.items()]
