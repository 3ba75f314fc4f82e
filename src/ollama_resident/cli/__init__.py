"""The command line: parse, call the core, render. No HTTP or scheduling here.

``main()`` is the console-script entry point. Errors become messages and exit
codes in exactly one place, :meth:`_Group.invoke`, so ``CliRunner`` tests see
the same behaviour as a shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ollama_resident import __version__, _env
from ollama_resident.cli._common import State
from ollama_resident.errors import ExitCode, ResidentError

__all__ = ["Terminated", "app", "main"]

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 an operation on a model failed; 2 usage or configuration "
    "error; 3 Ollama unreachable; 130 interrupted (watch and guard exit 0 on Ctrl-C)."
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered through the same path as Ctrl-C so cleanup runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _debug_enabled(ctx: typer.Context) -> bool:
    if os.environ.get(_env.DEBUG, "").strip() not in ("", "0"):
        return True
    return isinstance(ctx.obj, State) and ctx.obj.debug


# Typer vendors click's exceptions without re-exporting UsageError (the base of
# typer.BadParameter, and what a missing argument or an unknown option raises).
_ClickUsageError: type[Exception] = typer.BadParameter.__mro__[1]


def _usage_error(exc: Exception) -> typer.Exit:
    """Click's four-line usage error as ours: one line, then a hint; exit 2."""
    from ollama_resident.cli._output import Output

    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "ollama-resident"
    message = str(getattr(exc, "format_message", lambda: str(exc))())
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    Output().error(message.rstrip("."), f"see `{path} --help`")
    return typer.Exit(int(ExitCode.USAGE))


class _Group(TyperGroup):
    """Lazy commands, and the error boundary: ResidentError -> one line on stderr + exit code.

    Usage errors (an unknown option, a missing argument, a bad value) take the same
    form: one line and a hint, exit 2, wherever click finds them.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _ClickUsageError as exc:
            raise _usage_error(exc) from None

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [*_COMMANDS, *(n for n in self.commands if n not in _COMMANDS)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in _COMMANDS:
            command = self.commands[cmd_name] = _build_command(cmd_name)
        return command

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        from ollama_resident import stopping

        # watch and guard stop quietly (exit 0) on Ctrl-C or SIGTERM, at any moment:
        # their loop polls a flag the signal sets (see ollama_resident.stopping).
        quiet_stop = _command_name(ctx) in _STOP_QUIETLY
        previous: dict[int, Any] = {}
        undo: list[Any] = []
        try:  # the handlers are set inside: what they raise is handled below
            if quiet_stop:
                undo.append(stopping.install())
            else:
                with contextlib.suppress(ValueError):  # not the main thread (test runners)
                    previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)
                    previous[signal.SIGINT] = signal.signal(
                        signal.SIGINT, signal.default_int_handler
                    )
            early = stopping.take_early()  # a signal during start-up, now acted on
            if early is not None:
                raise Terminated() if early == signal.SIGTERM else KeyboardInterrupt()
            if _stderr_is_terminal():
                _show_startup_failures()
            return super().invoke(ctx)
        except _ClickUsageError as exc:
            raise _usage_error(exc) from None
        except ResidentError as exc:
            if _debug_enabled(ctx):
                raise
            from ollama_resident.cli._output import Output

            Output().error(exc.message, exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, and SIGTERM as Terminated
            if quiet_stop:
                raise typer.Exit(int(ExitCode.OK)) from None
            sys.stderr.write("terminated\n" if isinstance(exc, Terminated) else "interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`guard --jsonl | head -1`, `ps | head -1`): stop
            # quietly with success, as a pipeline expects of a command it cut short.
            from ollama_resident.cli._output import Output

            Output.reader_gone()
            raise typer.Exit(int(ExitCode.OK)) from None
        except Exception as exc:
            if _debug_enabled(ctx) or type(exc).__module__.startswith("typer"):
                raise
            if quiet_stop and _interrupted(exc):
                # A library's cleanup failed while a Ctrl-C unwound through it: still a stop.
                raise typer.Exit(int(ExitCode.OK)) from None
            from ollama_resident.cli._output import Output

            Output().error(
                f"unexpected error: {type(exc).__name__}: {exc}",
                f"run again with --debug (or {_env.DEBUG}=1) for the traceback, "
                "and please report it",
            )
            raise typer.Exit(int(ExitCode.FAILED)) from None
        finally:
            for restore in undo:
                restore()
            for num, handler in previous.items():
                signal.signal(num, handler if handler is not None else signal.SIG_DFL)


_STOP_QUIETLY = frozenset({"watch", "guard"})


def _command_name(ctx: typer.Context) -> str | None:
    """The subcommand this invocation runs (click keeps it first in its protected args)."""
    args = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []
    words = [*args, *ctx.args]
    return str(words[0]) if words else None


def _interrupted(exc: BaseException) -> bool:
    """``exc`` was raised while a KeyboardInterrupt (Ctrl-C, SIGTERM) was being handled."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _show_startup_failures() -> None:
    """A detached startup apply that failed is told once, by the next command on a terminal.

    The startup line sends everything to /dev/null so that it never writes over a
    prompt; this is where its failures come out (see ollama_resident.startup).
    """
    from ollama_resident.startup import take_failures

    failures = take_failures()
    if failures:
        from ollama_resident.cli._output import Output

        out = Output()
        for failure in failures:
            out.warn(failure.text())


app = typer.Typer(
    name="ollama-resident",
    cls=_Group,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
    help="Keep the right Ollama models loaded, and say why one was not.",
    epilog=EXIT_CODES_HELP,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ollama-resident {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Show the version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help=f"Show tracebacks instead of one-line errors (also {_env.DEBUG}=1).",
        ),
    ] = False,
    profiles: Annotated[
        str | None,
        typer.Option(
            "--profiles",
            help=f"The profiles file (also ${_env.PROFILES}; default: profiles.toml in the "
            "app's config dir, see `profile path`).",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Keep the right Ollama models loaded, and say in plain words why one was not.

    The server is --host, else a profile's host, else $OLLAMA_HOST, else
    127.0.0.1:11434, read the way Ollama reads it.
    """
    ctx.obj = State(debug=debug, profiles=profiles)


# Each command's module is imported only when that command runs (or for --help and
# completion of command names): `ps` never pays for `apply`'s or `watch`'s code.
_COMMANDS = {
    "ps": "ps",
    "preload": "load",
    "pin": "load",
    "unload": "load",
    "apply": "apply",
    "profile": "profile",
    "guard": "guard",
    "service": "service",
    "watch": "watch",
    "why": "why",
    "journal": "watch",
    "doctor": "doctor",
    "shell-init": "shell",
}


def _build_command(name: str) -> Any:
    """The click command for ``name`` alone: its siblings in the same module stay unbuilt.

    Building a command reads its signature and makes its click parameters; `pin` must
    not pay for `preload` and `unload`.
    """
    import importlib
    from typing import get_type_hints

    from typer.main import get_command_from_info, get_group_from_info

    module = importlib.import_module(f"ollama_resident.cli.{_COMMANDS[name]}")
    holder = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    module.register(holder)
    for info in holder.registered_commands:
        if info.name == name and info.callback is not None:
            # typer evaluates string annotations twice (inspect.signature, get_type_hints);
            # evaluated once here, they are objects by then.
            info.callback.__annotations__ = get_type_hints(info.callback, include_extras=True)
            return get_command_from_info(
                info, pretty_exceptions_short=holder.pretty_exceptions_short, rich_markup_mode=None
            )
    for group in holder.registered_groups:
        if group.name == name:
            return get_group_from_info(
                group,
                pretty_exceptions_short=holder.pretty_exceptions_short,
                suggest_commands=holder.suggest_commands,
                rich_markup_mode=None,
            )
    raise LookupError(f"ollama_resident.cli.{_COMMANDS[name]} does not register {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI on ``argv`` (default: sys.argv); the console script enters through
    :mod:`ollama_resident.__main__`, which imports this module with the collector off."""
    app(args=argv, prog_name="ollama-resident")
