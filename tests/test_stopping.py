"""Ctrl-C and SIGTERM stop watch and guard with exit 0, whenever they come.

A CI run saw `watch` end with "unexpected error: RuntimeError: release unlocked lock"
(rc 1) on SIGTERM: the handler raised KeyboardInterrupt inside threading's Condition.wait,
between its lock being released and the ``try`` that takes it back. A new user saw rc 130
("terminated") or 143 for a SIGTERM during start-up. The handler now only sets a flag while
the loop polls it, and the entry point notes signals from its first line on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from fakeollama import FakeOllama
from ollama_resident import stopping


@pytest.fixture
def installed() -> Iterator[stopping.StopFlag]:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    undo = stopping.install()
    try:
        yield stopping.current()
    finally:
        undo()
    assert {s: signal.getsignal(s) for s in before} == before  # put back as they were


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_a_lock_only_sets_the_flag(installed: stopping.StopFlag, sig: int) -> None:
    # The handler runs at the next bytecode, here inside a Condition's lock: where a raise
    # made `with` release an unlocked lock. While polled, it must not raise at all.
    cond = threading.Condition()
    with stopping.polling(installed):
        with cond:
            os.kill(os.getpid(), sig)
            for _ in range(1000):  # bytecodes: the handler has run by the end
                pass
        assert installed.is_set()
        assert installed.wait(None) is True  # returns at once, no lock taken


def test_a_wait_in_another_thread_wakes_when_the_signal_comes(
    installed: stopping.StopFlag,
) -> None:
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: installed.wait(None) and woke.set(), daemon=True)
    waiter.start()
    with stopping.polling(installed):
        os.kill(os.getpid(), signal.SIGTERM)
        assert installed.wait(60)
    assert woke.wait(60), "the other thread's wait did not return"


def test_a_second_signal_or_one_outside_the_loop_raises(installed: stopping.StopFlag) -> None:
    with pytest.raises(KeyboardInterrupt):  # nobody polls: raise, as Python would
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
    assert installed.is_set()
    with stopping.polling(installed), pytest.raises(KeyboardInterrupt):  # set already
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass


_STARTUP = """
import os, signal, sys
from ollama_resident import stopping
from ollama_resident.__main__ import main
stopping.note_early()                 # what main() does on its first line
os.kill(os.getpid(), signal.{sig})    # ... and the signal comes during start-up
sys.argv = ["ollama-resident", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("args", "sig", "code", "said"),
    [
        (["watch", "--jsonl", "--no-journal"], "SIGTERM", 0, ""),
        (["watch", "--jsonl", "--no-journal"], "SIGINT", 0, ""),
        (["guard", "tiny", "--jsonl", "--no-journal"], "SIGTERM", 0, ""),
        (["ps"], "SIGTERM", 130, "terminated\n"),
        (["ps"], "SIGINT", 130, "interrupted\n"),
    ],
)
def test_a_signal_during_start_up_ends_the_command_as_documented(
    ollama: FakeOllama, args: list[str], sig: str, code: int, said: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _STARTUP.format(sig=sig), *args],
        env={**os.environ, "OLLAMA_HOST": ollama.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (run.returncode, run.stderr) == (code, said)
    assert run.stdout == ""  # the command never ran: nothing recorded, nothing loaded
