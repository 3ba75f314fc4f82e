"""``service print|install``: run ``guard`` for profiles as a service, or a Kubernetes sidecar."""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from ollama_resident.cli._complete import profile_names
from ollama_resident.cli._options import QuietOpt

if TYPE_CHECKING:
    from ollama_resident.profiles import Profile

__all__ = ["register"]

service_app = typer.Typer(
    name="service",
    help="Run `guard` for profiles as a service (systemd, launchd, docker compose) or as a "
    "Kubernetes sidecar.\n\n"
    "\b\nExamples:\n"
    "  ollama-resident service print --profile coding\n"
    "  ollama-resident service install --profile coding\n"
    "  ollama-resident service print --profile coding --compose",
    no_args_is_help=True,
)


class Kind(str, Enum):
    systemd = "systemd"
    launchd = "launchd"
    compose = "compose"
    kubernetes = "kubernetes"


ProfileArg = Annotated[
    list[str],
    typer.Option(
        "--profile",
        "-p",
        help="The profile the guard keeps resident (must exist); repeat it for one guard "
        "of several profiles.",
        autocompletion=profile_names,
    ),
]
SystemdOpt = Annotated[bool, typer.Option("--systemd", help="A systemd user unit (Linux default).")]
LaunchdOpt = Annotated[
    bool, typer.Option("--launchd", help="A launchd agent plist (macOS default).")
]
ComposeOpt = Annotated[bool, typer.Option("--compose", help="A docker compose service snippet.")]
KubernetesOpt = Annotated[
    bool,
    typer.Option(
        "--kubernetes",
        help="Kubernetes manifests: a ConfigMap with the profiles and a Deployment of Ollama "
        "with the guard as a sidecar in each pod (see docs/kubernetes.md).",
    ),
]
ImageOpt = Annotated[
    str | None,
    typer.Option(
        "--image",
        help="With --kubernetes: the guard's image (built from the repository's Dockerfile). "
        "Default: ollama-resident:VERSION.",
        metavar="IMAGE",
        show_default=False,
    ),
]


def _kind(systemd: bool, launchd: bool, compose: bool, kubernetes: bool = False) -> Kind:
    from ollama_resident.errors import UsageError

    chosen = [
        k
        for k, on in (
            (Kind.systemd, systemd),
            (Kind.launchd, launchd),
            (Kind.compose, compose),
            (Kind.kubernetes, kubernetes),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(
            "choose one of --systemd, --launchd, --compose, --kubernetes",
            hint="without any, it is launchd on macOS and systemd elsewhere",
        )
    if chosen:
        return chosen[0]
    return Kind.launchd if sys.platform == "darwin" else Kind.systemd


def _build(  # type: ignore[no-untyped-def]
    ctx: typer.Context, names: list[str], kind: Kind, image: str | None = None
):
    from pathlib import Path

    from ollama_resident import paths, profiles, service
    from ollama_resident.cli._common import state
    from ollama_resident.errors import UsageError

    option = state(ctx).profiles
    profile = list(dict.fromkeys(n for n in names if n.strip()))
    if not profile:
        raise UsageError(
            "name a profile with --profile NAME",
            hint="`ollama-resident profile list` shows the profiles",
        )
    # exit 2 for an unknown profile, listing known ones
    chosen = [profiles.resolve(name, option) for name in profile]
    if image is not None and kind is not Kind.kubernetes:
        raise UsageError("--image goes with --kubernetes", hint="add --kubernetes, or drop --image")
    if kind is Kind.kubernetes:
        return _kubernetes(chosen, image)
    if kind is Kind.compose:
        argv = service.guard_argv(["ollama-resident"], profile)
        return service.compose_snippet(argv, profile)
    profiles_file = str(paths.profiles_path(option).resolve())
    argv = service.guard_argv(
        [sys.executable, "-m", "ollama_resident"], profile, profiles_file=profiles_file
    )
    environment = _environment_in_use(chosen)
    if kind is Kind.launchd:
        return service.launchd_plist(
            argv, profile, Path.home(), paths.state_dir(), environment=environment
        )
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return service.systemd_unit(
        argv,
        profile,
        Path.home(),
        environment=environment,
        config_home=Path(xdg) if xdg and Path(xdg).is_absolute() else None,
    )


def _environment_in_use(chosen: list[Profile]) -> dict[str, str]:
    """What this shell's environment changes for the guard, for the unit to carry.

    A service does not run in the user's shell: without these it would guard the
    default 127.0.0.1:11434 (a profile without ``host`` follows $OLLAMA_HOST) and
    write the journal to the default place. Carried as set: OLLAMA_HOST (checked
    first, so an unusable value is refused here, exit 2, not in the service),
    OLLAMA_RESIDENT_JOURNAL and OLLAMA_RESIDENT_HOME as absolute paths. A profile
    with its own ``host`` does not need OLLAMA_HOST; the guard still prefers it.
    """
    from pathlib import Path

    from ollama_resident import _env
    from ollama_resident.cli._common import resolve_host

    env: dict[str, str] = {}
    ollama_host = os.environ.get(_env.OLLAMA_HOST, "").strip()
    if ollama_host and any(p.host is None for p in chosen):
        resolve_host(None)  # exit 2, naming the value, if no command could use it
        env[_env.OLLAMA_HOST] = ollama_host
    for name in (_env.JOURNAL, _env.HOME):
        value = os.environ.get(name, "").strip()
        if value:
            env[name] = str(Path(value).expanduser().resolve())
    return env


@service_app.command("print")
def service_print(
    ctx: typer.Context,
    profile: ProfileArg,
    systemd: SystemdOpt = False,
    launchd: LaunchdOpt = False,
    compose: ComposeOpt = False,
    kubernetes: KubernetesOpt = False,
    image: ImageOpt = None,
) -> None:
    """Print a service definition that runs `guard --profile NAME --wait 300`.

    The program is run directly, never through `sh -c`, and every word
    reaches it literally, whatever the profile name contains. Several
    --profile options make one guard for all of them.

    With --kubernetes: a ConfigMap holding the profiles (their host set to
    the pod's own Ollama, 127.0.0.1:11434) and a Deployment of ollama/ollama
    with the guard as a sidecar, unprivileged, serving metrics on port 9778.

    \b
    Examples:
      ollama-resident service print --profile work > ~/.config/systemd/user/x.service
      ollama-resident service print --profile work --compose
      ollama-resident service print -p work --kubernetes --image registry/ollama-resident:0.1
    """
    from ollama_resident.cli._output import Output

    result = _build(ctx, profile, _kind(systemd, launchd, compose, kubernetes), image)
    Output().data(result.text.rstrip("\n"))


@service_app.command("install")
def service_install(
    ctx: typer.Context,
    profile: ProfileArg,
    systemd: SystemdOpt = False,
    launchd: LaunchdOpt = False,
    compose: ComposeOpt = False,
    kubernetes: KubernetesOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the service file to the standard per-user place and say how to enable it.

    systemd: $XDG_CONFIG_HOME/systemd/user/ (~/.config/systemd/user/);
    launchd: ~/Library/LaunchAgents/. compose and Kubernetes have no such place:
    use `service print`. The unit carries what this shell sets: $OLLAMA_HOST (for
    profiles without a host), $OLLAMA_RESIDENT_JOURNAL and $OLLAMA_RESIDENT_HOME.
    Running it again rewrites the file (after moving the profiles file, say).

    \b
    Examples:
      ollama-resident service install --profile work
      systemctl --user enable --now ollama-resident-guard-work.service   # as it says
      journalctl --user -u ollama-resident-guard-work -f   # what the guard does
      ollama-resident service install --profile work --launchd   # on macOS
      ollama-resident service install -p laptop -p gpu-box    # one guard, two profiles
    """
    from ollama_resident.atomic import atomic_write
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import UsageError

    kind = _kind(systemd, launchd, compose, kubernetes)
    result = _build(ctx, profile, kind)
    if result.path is None:
        flags = " ".join(f"--profile {_sh(p)}" for p in profile)
        if kind is Kind.kubernetes:
            raise UsageError(
                "Kubernetes manifests are applied to a cluster, not installed here",
                hint=f"run `ollama-resident service print {flags} --kubernetes | "
                "kubectl apply -f -`",
            )
        raise UsageError(
            "docker compose has no per-user place to install to",
            hint=f"paste the output of `ollama-resident service print {flags} "
            "--compose` into your compose file",
        )
    result.path.parent.mkdir(parents=True, exist_ok=True)
    existed = result.path.exists()
    atomic_write(result.path, result.text)
    out = Output(quiet=quiet)
    out.success(f"{'updated' if existed else 'wrote'} {result.path}")
    out.info("enable and start it with:")
    out.data(result.enable or "")


def _kubernetes(chosen: list[Profile], image: str | None):  # type: ignore[no-untyped-def]
    import dataclasses

    from ollama_resident import __version__, kube, profiles, service

    pod = [dataclasses.replace(p, host=kube.POD_OLLAMA_HOST) for p in chosen]
    opts = kube.KubeOptions(image=image or f"ollama-resident:{__version__}")
    text = kube.kubernetes_manifests([p.name for p in pod], profiles.to_toml(pod), opts)
    return service.ServiceFile("kubernetes", text, None, None)


def _sh(word: str) -> str:
    import shlex

    return shlex.quote(word)


def register(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")
