"""Shell startup: apply a profile in a detached process, one at a time, and never silently fail.

The line a shell startup file runs (``shell-init`` prints it) puts ``apply NAME
--background`` in the background itself, so the prompt never waits for Python.
That process only takes the profile's lock and starts the detached run:

- :func:`spawn_once` takes an exclusive, non-blocking ``flock`` on
  ``apply-NAME.lock`` and hands it to a detached child: the lock lives exactly as
  long as that child (the kernel drops it when the child exits, even if it
  crashes), and every other caller meanwhile sees it held and returns at once. Ten
  terminals opened together cause one check and at most one load.
- The child is this module run as a program (:func:`run_logged`): it runs ``apply
  NAME --quiet`` with its output appended to ``apply-NAME.log`` in the state
  directory, beside the journal (``journal path``), each run between a start and an
  exit line.
- A run that fails leaves ``apply-NAME.failed`` (its error lines, exit code and
  time); a later run that succeeds removes it. The next command run on a terminal
  shows it once (:func:`take_failures`, called at the CLI's error boundary), so a
  failure reaches the user where they look without ever writing to the prompt.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from ollama_resident import paths

__all__ = [
    "SHELLS",
    "StartupFailure",
    "failure_path",
    "lock_path",
    "log_path",
    "record_failure",
    "run_logged",
    "runner_argv",
    "spawn_once",
    "startup_line",
    "take_failures",
]

LOG_MAX_BYTES = 256 * 1024  # a log this big is moved to .log.1 before the next run
_FAILED = ".failed"


def _safe(profile: str) -> str:
    """The profile name as a file name part: anything but [A-Za-z0-9._-] becomes '_'."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in profile)


def log_path(profile: str) -> Path:
    """``apply-NAME.log`` in the state directory: the detached runs' output."""
    return paths.state_dir() / f"apply-{_safe(profile)}.log"


def lock_path(profile: str) -> Path:
    """``apply-NAME.lock``: held by the one detached run of this profile."""
    return paths.state_dir() / f"apply-{_safe(profile)}.lock"


def failure_path(profile: str) -> Path:
    """``apply-NAME.failed``: the last failed run, until shown or until a run succeeds."""
    return paths.state_dir() / f"apply-{_safe(profile)}{_FAILED}"


def runner_argv(profile: str, cli_args: Sequence[str]) -> list[str]:
    """The detached child's command line: this module, the profile, then the CLI's args."""
    return [sys.executable, "-m", "ollama_resident.startup", profile, "--", *cli_args]


def spawn_once(argv: Sequence[str], lock_file: Path, log_file: Path) -> int | None:
    """Start ``argv`` detached, holding ``lock_file`` for its whole life.

    Returns the child's pid, or None when another process holds the lock (the
    same work is already under way). The child's output goes to ``log_file``.
    """
    import subprocess

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            return None
        _rotate(log_file)
        with open(log_file, "ab") as log:
            # The child inherits the locked file description (pass_fds); once we close
            # our copy below, the child alone holds the lock until it exits.
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(fd,) if sys.platform != "win32" else (),
                start_new_session=sys.platform != "win32",
                close_fds=True,
            )
        return proc.pid
    finally:
        os.close(fd)


def _rotate(log_file: Path) -> None:
    with contextlib.suppress(OSError):
        if log_file.stat().st_size > LOG_MAX_BYTES:
            os.replace(log_file, log_file.with_name(log_file.name + ".1"))


# -- the line for a shell startup file -----------------------------------------------------------

SHELLS = ("bash", "zsh", "fish")


def startup_line(shell: str, profile: str, profiles_file: str | None = None) -> str:
    """The lines to paste into a shell's startup file, ending in a newline.

    Static text on purpose: the shell runs no Python before its prompt. The shell
    itself puts the command in the background and forgets it (bash ``& disown``, zsh
    ``&!``, fish ``&`` then ``disown``), with all of its output sent to /dev/null; the
    command only takes the profile's lock and starts the detached apply. ``nice``: on
    a busy machine the Python start-up it runs in parallel would otherwise take CPU
    from the shell's own start-up (measured: +3 to +5 ms for zsh and fish without it,
    under 2 ms with it).

    For example, for zsh::

        # ollama-resident: apply profile "work" in the background when a shell starts.
        # Silent: a failure is shown once by the next ollama-resident command you run;
        # log: /home/me/.local/state/ollama-resident/apply-work.log
        command -v ollama-resident >/dev/null && ollama-resident apply work --background \
--quiet </dev/null >/dev/null 2>&1 &!
    """
    quote = _fish_quote if shell == "fish" else _sh_quote
    words = ["nice", "ollama-resident"]
    if profiles_file:
        words += ["--profiles", quote(profiles_file)]
    words += ["apply", "--background", "--quiet", "--", quote(profile)]
    if not profile.startswith("-"):
        words = [*words[:-4], quote(profile), "--background", "--quiet"]
    command = " ".join(words) + " </dev/null >/dev/null 2>&1"
    comment = (
        f"# ollama-resident: apply profile {json.dumps(profile)} in the background when a "
        "shell starts.\n# Silent: a failure is shown once by the next ollama-resident "
        f"command you run;\n# log: {log_path(profile)}\n"
    )
    if shell == "bash":
        return comment + f"command -v ollama-resident >/dev/null && {{ {command} & disown; }}\n"
    if shell == "zsh":
        return comment + f"command -v ollama-resident >/dev/null && {command} &!\n"
    if shell == "fish":
        return (
            comment + "if status is-interactive; and command -q ollama-resident\n"
            f"    {command} &\n    disown\nend\n"
        )
    raise ValueError(f"no startup line for {shell!r}; one of {', '.join(SHELLS)}")


def _sh_quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


def _fish_quote(word: str) -> str:
    """fish's quoting: inside single quotes only \\ and \\' are escapes."""
    if word and all(c.isascii() and (c.isalnum() or c in "_./:@%+=,-") for c in word):
        return word
    return "'" + word.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- failures: recorded by the detached run, shown once by the next interactive command --------


class StartupFailure(NamedTuple):  # a NamedTuple: 10x cheaper to define than a dataclass
    """A detached apply that failed: which profile, when, how, and where its log is."""

    profile: str
    time: str  # ISO 8601, local time
    exit_code: int
    errors: tuple[str, ...]  # its "error: ..." lines, as written to the log
    log: str

    def text(self, today: str | None = None) -> str:
        """One line for a terminal: 'profile "work" was not applied (`apply work --background`,
        09:14): cannot reach Ollama at ... ; log: PATH'. The date is added when not ``today``.

        It names the command that ran, not shell startup: a startup line runs that very
        command, and so does a person or a script by hand.
        """
        today = today or datetime.now().astimezone().date().isoformat()
        when = self.time[11:16] if self.time[:10] == today else self.time[:16].replace("T", " ")
        first = self.errors[0].removeprefix("error: ") if self.errors else "no error message"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        log = f"; log: {self.log}" if self.log else ""
        import shlex

        ran = f"apply {shlex.quote(self.profile)} --background"
        head = f'profile "{self.profile}" was not applied (`{ran}`, {when})'
        return f"{head}: {first}{more}{log}"


def record_failure(profile: str, exit_code: int, errors: Sequence[str]) -> Path:
    """Leave the failure for the next interactive command (replacing an older one)."""
    from ollama_resident.atomic import atomic_write

    failure = {
        "profile": profile,
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "exit_code": exit_code,
        "errors": list(errors),
        "log": str(log_path(profile)),
    }
    return atomic_write(failure_path(profile), json.dumps(failure) + "\n")


def clear_failure(profile: str) -> None:
    """A run succeeded: an older failure of this profile is no longer true."""
    with contextlib.suppress(FileNotFoundError):
        failure_path(profile).unlink()


def take_failures() -> list[StartupFailure]:
    """Every recorded failure, each handed to exactly one caller and then deleted.

    Cheap when there are none (one directory listing). A file that does not parse is
    reported as such rather than dropped.
    """
    try:
        entries = [e for e in os.scandir(paths.state_dir()) if e.name.endswith(_FAILED)]
    except OSError:
        return []
    taken: list[StartupFailure] = []
    for entry in sorted(entries, key=lambda e: e.name):
        claimed = f"{entry.path}.{os.getpid()}.shown"
        try:
            os.replace(entry.path, claimed)  # two terminals at once: one of them wins
        except OSError:
            continue
        try:
            with open(claimed, encoding="utf-8") as f:
                data = json.load(f)
            taken.append(
                StartupFailure(
                    profile=str(data["profile"]),
                    time=str(data["time"]),
                    exit_code=int(data["exit_code"]),
                    errors=tuple(str(e) for e in data["errors"]),
                    log=str(data["log"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            name = entry.name.removesuffix(_FAILED).removeprefix("apply-")
            taken.append(StartupFailure(name, "", 1, (f"unreadable record {entry.path}",), ""))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(claimed)
    return taken


# -- the detached run ----------------------------------------------------------------------------


def _log_line(text: str) -> None:
    """A timestamped line of the run's own on stdout, which is the profile's log."""
    sys.stdout.write(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {text}\n")
    sys.stdout.flush()


def run_logged(profile: str, cli_args: Sequence[str]) -> int:
    """Run the CLI with ``cli_args`` (stdout and stderr are the profile's log); record the outcome.

    Returns the exit code. On failure the run's ``error:`` lines (with their hints) are
    read back from the log and recorded with :func:`record_failure`; on success an
    older failure is cleared.
    """
    log = log_path(profile)
    try:
        start = log.stat().st_size
    except OSError:
        start = 0
    import shlex

    _log_line(f"start: ollama-resident {shlex.join(cli_args)} (pid {os.getpid()})")
    from ollama_resident.cli import main

    try:
        main(list(cli_args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # a crash is a failure to report, not to lose
        import traceback

        traceback.print_exc()
        code = 1
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {exc}\n")
    sys.stderr.flush()
    if code == 0:
        clear_failure(profile)
    else:
        record_failure(profile, code, _errors_since(log, start))
    _log_line(f"exit {code}")  # last: the run is over and its outcome recorded
    return code


def _errors_since(log: Path, offset: int) -> list[str]:
    """The ``error: ...`` lines written to ``log`` after ``offset``."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.startswith("error: ")]


def _main(argv: Sequence[str]) -> int:
    """``python -m ollama_resident.startup PROFILE -- CLI-ARGS...`` (see :func:`runner_argv`)."""
    if len(argv) < 2 or argv[1] != "--":
        sys.stderr.write("usage: python -m ollama_resident.startup PROFILE -- ARGS...\n")
        return 2
    return run_logged(argv[0], argv[2:])


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        # Windows cannot hand a lock to a child process: the lock only keeps two
        # shells that start in the same instant from both spawning.
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
