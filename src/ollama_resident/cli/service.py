"""``service print|install``: run ``guard`` for a profile as a user service."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

__all__ = ["register"]

service_app = typer.Typer(
    name="service",
    help="Run `guard` for a profile as a service (systemd, launchd or docker compose).",
    no_args_is_help=True,
)


class Kind(str, Enum):
    systemd = "systemd"
    launchd = "launchd"
    compose = "compose"


ProfileArg = Annotated[
    str,
    typer.Option("--profile", "-p", help="The profile the guard keeps resident (must exist)."),
]
SystemdOpt = Annotated[bool, typer.Option("--systemd", help="A systemd user unit (Linux default).")]
LaunchdOpt = Annotated[
    bool, typer.Option("--launchd", help="A launchd agent plist (macOS default).")
]
ComposeOpt = Annotated[bool, typer.Option("--compose", help="A docker compose service snippet.")]


def _kind(systemd: bool, launchd: bool, compose: bool) -> Kind:
    from ollama_resident.errors import UsageError

    chosen = [
        k
        for k, on in ((Kind.systemd, systemd), (Kind.launchd, launchd), (Kind.compose, compose))
        if on
    ]
    if len(chosen) > 1:
        raise UsageError("choose one of --systemd, --launchd, --compose")
    if chosen:
        return chosen[0]
    return Kind.launchd if sys.platform == "darwin" else Kind.systemd


def _build(ctx: typer.Context, profile: str, kind: Kind):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from ollama_resident import paths, profiles, service
    from ollama_resident.cli._common import state

    option = state(ctx).profiles
    profiles.resolve(profile, option)  # exit 2 for an unknown profile, listing known ones
    if kind is Kind.compose:
        argv = service.guard_argv(["ollama-resident"], profile)
        return service.compose_snippet(argv, profile)
    profiles_file = str(paths.profiles_path(option).resolve())
    argv = service.guard_argv(
        [sys.executable, "-m", "ollama_resident"], profile, profiles_file=profiles_file
    )
    if kind is Kind.launchd:
        return service.launchd_plist(argv, profile, Path.home(), paths.state_dir())
    return service.systemd_unit(argv, profile, Path.home())


@service_app.command("print")
def service_print(
    ctx: typer.Context,
    profile: ProfileArg,
    systemd: SystemdOpt = False,
    launchd: LaunchdOpt = False,
    compose: ComposeOpt = False,
) -> None:
    """Print a service definition that runs `guard --profile NAME --wait 300`.

    The program is run directly, never through `sh -c`, and every word
    reaches it literally, whatever the profile name contains.

    \b
    Examples:
      ollama-resident service print --profile work > ~/.config/systemd/user/x.service
      ollama-resident service print --profile work --compose
    """
    from ollama_resident.cli._output import Output

    result = _build(ctx, profile, _kind(systemd, launchd, compose))
    Output().data(result.text.rstrip("\n"))


@service_app.command("install")
def service_install(
    ctx: typer.Context,
    profile: ProfileArg,
    systemd: SystemdOpt = False,
    launchd: LaunchdOpt = False,
    compose: ComposeOpt = False,
) -> None:
    """Write the service file to the standard per-user place and say how to enable it.

    systemd: ~/.config/systemd/user/; launchd: ~/Library/LaunchAgents/.
    compose has no standard place: use `service print --compose`.
    """
    from ollama_resident.atomic import atomic_write
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import UsageError

    kind = _kind(systemd, launchd, compose)
    result = _build(ctx, profile, kind)
    if result.path is None:
        raise UsageError(
            "docker compose has no per-user place to install to",
            hint=f"paste the output of `ollama-resident service print --profile {profile} "
            "--compose` into your compose file",
        )
    result.path.parent.mkdir(parents=True, exist_ok=True)
    existed = result.path.exists()
    atomic_write(result.path, result.text)
    out = Output()
    out.success(f"{'updated' if existed else 'wrote'} {result.path}")
    out.info("enable and start it with:")
    out.data(result.enable or "")


def register(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")
