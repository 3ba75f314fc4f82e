"""``profile list|show|save|add|remove|path|edit``: named model sets in profiles.toml.

Every change goes through ``profiles.update``: one lock around read, change and
atomic write, so two commands in two terminals both land and a crash leaves the
old file or the new one, never half. A file that does not parse is never written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollama_resident.cli._complete import installed_models, profile_names
from ollama_resident.cli._options import HostOpt, JsonOpt, QuietOpt, TimeoutOpt, WaitOpt
from ollama_resident.cli.load import _keep_alive

if TYPE_CHECKING:
    from pathlib import Path

    from ollama_resident.cli._output import Output
    from ollama_resident.durations import KeepAlive
    from ollama_resident.models import PsSnapshot
    from ollama_resident.profiles import Profile, ProfileModel, WriteResult

__all__ = ["profile_app", "register"]

SCHEMA_VERSION = 1
LIST_COLUMNS = ("NAME", "MODELS", "KEEP-ALIVE", "HOST", "EXCLUSIVE")
MODEL_COLUMNS = ("MODEL", "KEEP-ALIVE", "CONTEXT")

# The editor variables every Unix tool reads, in git's order of preference.
_EDITOR_VARS = ("VISUAL", "EDITOR")
_FALLBACK_EDITORS = ("sensible-editor", "editor", "nano", "vi")

EXAMPLE_FILE = """\
# ollama-resident profiles: named sets of models to keep loaded.
# Apply one with `ollama-resident apply NAME`; the format is in docs/profiles.md.
# Note: `profile add/save/remove` rewrite this file without its comments
# (the commented version is kept beside it as profiles.toml.bak).
#
# [profiles.coding]
# keep_alive = "forever"            # default for this profile's models (omit: server default)
# host = "http://gpu-box:11434"     # optional; --host still wins
# exclusive = false                 # optional: apply unloads models not in the set
# models = [
#   "qwen2.5-coder:14b",
#   { name = "nomic-embed-text", keep_alive = "30m" },
#   { name = "llama3.2", num_ctx = 8192 },
# ]
"""

profile_app = typer.Typer(
    name="profile",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    help="Named sets of models (profiles.toml): list, show, save, add, remove, path, edit.\n\n"
    "\b\nExamples:\n"
    "  ollama-resident profile save coding\n"
    "  ollama-resident profile add coding qwen2.5-coder:14b --keep-alive forever\n"
    "  ollama-resident profile show coding\n"
    "  ollama-resident apply coding",
)

ProfileArg = Annotated[
    str,
    typer.Argument(help="The profile's name.", show_default=False, autocompletion=profile_names),
]
KeepAliveOpt = Annotated[
    str | None,
    typer.Option(
        "--keep-alive",
        "-k",
        help="How long to keep the models after the last request: 30m, 2h, forever.",
        callback=_keep_alive,
        metavar="DUR",
        show_default=False,
    ),
]
NumCtxOpt = Annotated[
    int | None,
    typer.Option(
        "--num-ctx",
        help="Load the model with this context length (apply reloads it if loaded with another).",
        min=1,
        show_default=False,
    ),
]


# -- helpers -----------------------------------------------------------------------------------


def _path(ctx: typer.Context) -> Path:
    from ollama_resident.cli._common import state
    from ollama_resident.paths import profiles_path

    return profiles_path(state(ctx).profiles)


def _check_profile_name(name: str) -> None:
    from ollama_resident.errors import UsageError
    from ollama_resident.profiles import validate_profile_name

    problem = validate_profile_name(name)
    if problem is not None:
        raise UsageError(problem, hint="for example `coding` or `work-2`")


def _check_model_names(names: list[str]) -> list[str]:
    from ollama_resident.errors import UsageError
    from ollama_resident.models import canonical_name
    from ollama_resident.profiles import validate_model_name

    cleaned: list[str] = []
    seen: set[str] = set()
    for name in names:
        problem = validate_model_name(name)
        if problem is not None:
            raise UsageError(problem, hint="`ollama list` shows the installed models' names")
        key = canonical_name(name)
        if key in seen:
            raise UsageError(f'"{name}" is given twice', hint="give each model once")
        seen.add(key)
        cleaned.append(name.strip())
    return cleaned


def _parsed(value: str | None) -> KeepAlive | None:
    from ollama_resident.durations import parse_keep_alive

    return None if value is None else parse_keep_alive(value)


def _host_text(host: str | None) -> str:
    from ollama_resident.host import redact

    return redact(host) if host else "-"


def _keep_alive_words(value: KeepAlive | None) -> str:
    return "server default" if value is None else value.describe()


def _report_write(out: Output, result: WriteResult) -> None:
    if result.backup is not None:
        out.warn(
            f"{result.file.path.name} had comments, which a rewrite does not keep: the previous "
            f"version, comments included, is in {result.backup}"
        )


def _describe(value: KeepAlive | None) -> str | None:
    return None if value is None else value.describe()


def _profile_json(p: Profile) -> dict[str, Any]:
    from ollama_resident.host import redact

    return {
        "name": p.name,
        "host": redact(p.host) if p.host else None,
        "keep_alive": _describe(p.keep_alive),
        "exclusive": p.exclusive,
        "models": [
            {
                "name": m.name,
                "keep_alive": _describe(m.keep_alive),
                "effective_keep_alive": _describe(p.keep_alive_for(m)),
                "num_ctx": m.num_ctx,
            }
            for m in p.models
        ],
    }


# -- list / show / path ------------------------------------------------------------------------


def profile_list(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """List the profiles: name, model count, keep-alive, host.

    \b
    Examples:
      ollama-resident profile list
      ollama-resident profile list --json | jq -r '.[].name'
    """
    from ollama_resident import profiles, render
    from ollama_resident.cli._output import Output

    out = Output(json=json_output)
    pf = profiles.load(_path(ctx))
    if json_output:
        out.data(render.dumps([_profile_json(p) for p in pf.profiles.values()]))
        return
    if not pf.profiles:
        out.info(
            f"No profiles in {pf.path}. Create one with `ollama-resident profile add NAME MODEL` "
            "or, from what is loaded, `ollama-resident profile save NAME`."
        )
        return
    rows = [
        (
            p.name,
            str(len(p.models)),
            _keep_alive_words(p.keep_alive),
            _host_text(p.host),
            "yes" if p.exclusive else "no",
        )
        for p in pf.profiles.values()
    ]
    out.data(render.plain_table(LIST_COLUMNS, rows, out.width))


def profile_show(ctx: typer.Context, name: ProfileArg, json_output: JsonOpt = False) -> None:
    """Show one profile: its settings and each model's keep-alive and context.

    A model's keep-alive is its own, else the profile's ("(profile)"), else the
    server's default for a new load.

    \b
    Examples:
      ollama-resident profile show coding
      ollama-resident profile show coding --json
    """
    from ollama_resident import profiles, render
    from ollama_resident.cli._output import Output

    out = Output(json=json_output)
    pf = profiles.load(_path(ctx))
    p = pf.get(name)
    if json_output:
        doc = {"schema_version": SCHEMA_VERSION, "file": str(pf.path), **_profile_json(p)}
        out.data(render.dumps(doc))
        return
    lines = [
        f"profile:     {p.name}",
        f"file:        {pf.path}",
        f"host:        {_host_text(p.host) if p.host else '$OLLAMA_HOST or --host'}",
        f"keep-alive:  {_keep_alive_words(p.keep_alive)}",
        f"exclusive:   {'yes' if p.exclusive else 'no'}",
    ]
    rows: list[tuple[str, ...]] = []
    for m in p.models:
        effective = p.keep_alive_for(m)
        words = _keep_alive_words(effective)
        if m.keep_alive is None and effective is not None:
            words += " (profile)"
        rows.append((m.name, words, str(m.num_ctx) if m.num_ctx else "-"))
    from ollama_resident.layout import Column

    layout: list[Column | str] = [Column("MODEL", elide=True), "KEEP-ALIVE", "CONTEXT"]
    body = render.plain_table(layout, rows, out.width) if rows else "(no models)"
    out.data("\n".join(lines) + "\n\n" + body)


def profile_path(ctx: typer.Context) -> None:
    """Print where the profiles file is (--profiles, $OLLAMA_RESIDENT_PROFILES, config dir).

    \b
    Examples:
      ollama-resident profile path
      $EDITOR "$(ollama-resident profile path)"
    """
    from ollama_resident.cli._output import Output

    out = Output()
    path = _path(ctx)
    out.data(str(path))
    if not path.exists():
        out.info(
            "(it does not exist yet: `profile add`, `profile save` or `profile edit` create it)"
        )


# -- add / remove / save -------------------------------------------------------------------------


def profile_add(
    ctx: typer.Context,
    name: ProfileArg,
    models: Annotated[
        list[str],
        typer.Argument(
            help="Models to add, as you type them: llama3.2, qwen2.5:14b.",
            autocompletion=installed_models,
        ),
    ],
    keep_alive: KeepAliveOpt = None,
    num_ctx: NumCtxOpt = None,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check",
            help="Add the names without asking the server (a model not pulled yet).",
        ),
    ] = False,
    host: HostOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Add models to a profile (creating the profile if needed).

    A model already in the profile keeps its entry; --keep-alive and --num-ctx,
    when given, replace its settings. Each name is checked against what the
    server (the profile's host, --host, $OLLAMA_HOST) has installed or loaded,
    by the same rule as `pin`: a name that matches nothing is refused (exit 2,
    with the close matches) and the file is left alone; --no-check adds it
    anyway. When the server does not answer, the names are added with a
    warning.

    \b
    Examples:
      ollama-resident profile add coding qwen2.5-coder:14b
      ollama-resident profile add coding nomic-embed-text --keep-alive 30m
      ollama-resident profile add coding llama3.2 --num-ctx 8192
      ollama-resident profile add coding deepseek-r1:8b --no-check
    """
    from ollama_resident import profiles
    from ollama_resident.cli._output import Output
    from ollama_resident.profiles import Profile, ProfileModel

    _check_profile_name(name)
    names = _check_model_names(models)
    ka = _parsed(keep_alive)
    out = Output(quiet=quiet)
    if not no_check:
        existing = profiles.load(_path(ctx)).profiles.get(name)
        _check_installed(out, names, host, existing.host if existing else None)
    changes: list[tuple[str, str]] = []
    created = False

    def change(pf: profiles.ProfilesFile) -> profiles.ProfilesFile:
        nonlocal created
        changes.clear()
        profile = pf.profiles.get(name)
        created = profile is None
        current = profile or Profile(name)
        for model in names:
            current, what = profiles.add_model(current, ProfileModel(model, ka, num_ctx))
            changes.append((model, what))
        return profiles.set_profile(pf, current)

    result = profiles.update(_path(ctx), change)
    _report_write(out, result)
    if created:
        out.success(f'created profile "{name}" in {result.file.path}')
    for model, what in changes:
        if what == "added":
            out.success(f'added {model} to profile "{name}"')
        elif what == "updated":
            entry = result.file.profiles[name].find(model)
            assert entry is not None
            out.success(f'updated {model} in profile "{name}": {_entry_words(entry)}')
        else:
            out.info(f'{model} is already in profile "{name}" as asked')


def _entry_words(m: ProfileModel) -> str:
    parts = []
    if m.keep_alive is not None:
        parts.append(f"keep-alive {m.keep_alive.describe()}")
    if m.num_ctx is not None:
        parts.append(f"context {m.num_ctx}")
    return ", ".join(parts) or "no settings of its own"


def profile_remove(
    ctx: typer.Context,
    name: ProfileArg,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to take out of the profile; none: remove the whole profile.",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Remove models from a profile, or the whole profile.

    \b
    Examples:
      ollama-resident profile remove coding llama3.2
      ollama-resident profile remove coding
    """
    from ollama_resident import profiles
    from ollama_resident.cli._output import Output

    names = _check_model_names(models or [])
    out = Output(quiet=quiet)
    removed: list[Profile] = []
    path = _path(ctx)

    def change(pf: profiles.ProfilesFile) -> profiles.ProfilesFile:
        removed.clear()
        profile = pf.get(name)
        removed.append(profile)
        if not names:
            return profiles.remove_profile(pf, name)
        for model in names:
            profile = profiles.remove_model(profile, model, path=pf.path)
        return profiles.set_profile(pf, profile)

    result = profiles.update(path, change)
    _report_write(out, result)
    old = removed[0]
    if names:
        left = len(result.file.profiles[name].models)
        out.success(
            f'removed {", ".join(names)} from profile "{name}" ({left} model'
            f"{'s' if left != 1 else ''} left)"
        )
    else:
        listed = ", ".join(old.model_names) or "no models"
        out.success(f'removed profile "{name}" ({listed})')


def _check_installed(
    out: Output, names: list[str], host: str | None, profile_host: str | None
) -> None:
    """Every name installed or loaded on the server (``resolve.check_names``, as ``pin``);
    UsageError (exit 2) with the close matches otherwise. A server that does not answer
    (within a short wait) is warned about, and the names go in unchecked."""
    from ollama_resident.cli._common import resolve_host
    from ollama_resident.client import OllamaClient
    from ollama_resident.errors import ServerUnreachable, UsageError
    from ollama_resident.resolve import check_names

    client = OllamaClient(resolve_host(host, profile_host), timeout=3.0, connect_timeout=1.0)
    try:
        with client:
            check_names(client, names, client.ps())
    except ServerUnreachable as exc:
        out.warn(f"names not checked ({exc}); added as given")
    except UsageError as exc:
        raise UsageError(
            exc.message.replace("; nothing was sent", "; the profile was not changed"),
            hint=(exc.hint + "; " if exc.hint else "") + "--no-check adds it anyway, to pull later",
        ) from None


def _snapshot_models(
    snapshot: PsSnapshot, training: dict[str, int | None], out: Output
) -> list[ProfileModel]:
    """What is loaded now as profile entries (see ``profile save``)."""
    from ollama_resident.durations import KeepAlive, round_up_to_minute
    from ollama_resident.profiles import ProfileModel
    from ollama_resident.residency import num_ctx_to_send

    now = snapshot.taken_at
    entries = []
    for m in snapshot.models:
        keep_alive: KeepAlive | None
        if m.is_pinned(now):
            keep_alive = KeepAlive.forever()
        else:
            remaining = m.expires_in(now)
            if remaining is None or remaining <= 0:
                keep_alive = None
                out.warn(
                    f"{m.name}: "
                    + ("its expiry is unknown" if remaining is None else "busy or stopping")
                    + "; saved without a keep-alive (the server default applies)"
                )
            else:
                keep_alive = KeepAlive.of_seconds(round_up_to_minute(remaining))
        num_ctx = num_ctx_to_send(m.context_length or None, training.get(m.name), None)
        entries.append(ProfileModel(m.name, keep_alive, num_ctx))
    return entries


def _hoist(entries: list[ProfileModel]) -> tuple[KeepAlive | None, list[ProfileModel]]:
    """One shared keep-alive becomes the profile's: ``keep_alive = "forever"`` reads better."""
    from ollama_resident.profiles import ProfileModel

    values = {e.keep_alive for e in entries}
    if len(values) == 1 and None not in values:
        shared = values.pop()
        return shared, [ProfileModel(e.name, None, e.num_ctx) for e in entries]
    return None, entries


def profile_save(
    ctx: typer.Context,
    name: ProfileArg,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="The profile's models; none: what is loaded on the server now.",
            show_default=False,
        ),
    ] = None,
    keep_alive: Annotated[
        str | None,
        typer.Option(
            "--keep-alive",
            "-k",
            help="The profile's keep-alive for every model (in a snapshot: instead of the "
            "windows seen).",
            callback=_keep_alive,
            metavar="DUR",
            show_default=False,
        ),
    ] = None,
    wait: WaitOpt = 0.0,
    host: HostOpt = None,
    timeout: TimeoutOpt = 10.0,
    quiet: QuietOpt = False,
) -> None:
    """Save a profile: the models named, or a snapshot of what is loaded now.

    A snapshot records a pinned model as forever and a finite window as the
    time it has left, rounded up to the minute (/api/ps shows only when a
    model expires). It records num_ctx only for a model loaded with less than
    its training context, by the same rule as `pin`: applying it then causes
    no reloads. An existing profile of that name is replaced; its host and
    exclusive settings are kept unless --host is given. A snapshot reads the
    server from --host, else the existing profile's host, else $OLLAMA_HOST.

    \b
    Examples:
      ollama-resident profile save coding            # what is loaded now
      ollama-resident profile save writing llama3.2 nomic-embed-text --keep-alive 1h
      ollama-resident profile save gpu --host http://gpu-box:11434
    """
    from ollama_resident import profiles
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import UsageError
    from ollama_resident.profiles import Profile, ProfileModel

    _check_profile_name(name)
    names = _check_model_names(models or [])
    ka = _parsed(keep_alive)
    out = Output(quiet=quiet)
    path = _path(ctx)
    existing = profiles.load(path).profiles.get(name)  # a broken file stops us before the server

    if names:
        entries = [ProfileModel(m) for m in names]
        source = ""
    else:
        from ollama_resident.cli.load import _session
        from ollama_resident.errors import ResidentError, ServerUnreachable

        with _session(host, timeout, wait, out, existing.host if existing else None) as client:
            snapshot = client.ps()
            if not snapshot.models:
                raise UsageError(
                    f"nothing is loaded on {client.display_url}, so there is nothing to save",
                    hint=f"name the models: `ollama-resident profile save {name} MODEL...`",
                )
            training: dict[str, int | None] = {}
            for m in snapshot.models:
                try:
                    training[m.name] = client.show(m.name).context_length
                except ServerUnreachable:
                    raise
                except ResidentError as exc:
                    out.warn(f"{m.name}: {exc.message}; its num_ctx is not recorded")
            entries = _snapshot_models(snapshot, training, out)
            source = f" from {client.display_url}"
        if ka is not None:
            entries = [ProfileModel(e.name, None, e.num_ctx) for e in entries]

    profile_ka = ka
    if profile_ka is None and not names:
        profile_ka, entries = _hoist(entries)
    replaced: list[Profile] = []

    def change(pf: profiles.ProfilesFile) -> profiles.ProfilesFile:
        replaced.clear()
        old = pf.profiles.get(name)
        if old is not None:
            replaced.append(old)
        new = Profile(
            name,
            tuple(entries),
            keep_alive=profile_ka,
            host=host if host else (old.host if old else None),
            exclusive=old.exclusive if old else False,
        )
        return profiles.set_profile(pf, new)

    result = profiles.update(path, change)
    _report_write(out, result)
    saved = result.file.profiles[name]
    what = ", ".join(_model_words(saved, m) for m in saved.models)
    verb = "replaced" if replaced else "saved"
    out.success(f'{verb} profile "{name}"{source}: {what}')
    if replaced and not result.changed:
        out.info("(it was already exactly that)")


def _model_words(p: Profile, m: ProfileModel) -> str:
    extra = [_keep_alive_words(p.keep_alive_for(m))]
    if m.num_ctx:
        extra.append(f"context {m.num_ctx}")
    return f"{m.name} ({', '.join(extra)})"


# -- edit ----------------------------------------------------------------------------------------


def _editor_command() -> list[str]:
    import os
    import shlex
    import shutil
    import sys

    from ollama_resident.errors import UsageError

    for var in _EDITOR_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            return shlex.split(value, posix=sys.platform != "win32")
    if sys.platform == "win32":
        return ["notepad"]
    for candidate in _FALLBACK_EDITORS:
        found = shutil.which(candidate)
        if found:
            return [found]
    raise UsageError(
        "no editor: $VISUAL and $EDITOR are not set and none of "
        + ", ".join(_FALLBACK_EDITORS)
        + " is installed",
        hint="set one, e.g. `export EDITOR=nano`",
    )


def profile_edit(ctx: typer.Context) -> None:
    """Open the profiles file in $VISUAL or $EDITOR, then check it.

    A missing file is created with a commented example first. After the editor
    exits, the file is validated and any problem is reported with its line
    (exit 2); the file stays as you left it.

    \b
    Examples:
      ollama-resident profile edit
      EDITOR="code --wait" ollama-resident profile edit
    """
    import subprocess

    from ollama_resident import profiles
    from ollama_resident.atomic import LockTimeout, atomic_write, file_lock
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import ProfileError, ResidentError, UsageError

    out = Output()
    path = _path(ctx)
    command = _editor_command()
    if not path.exists():
        try:
            with file_lock(path):
                if not path.exists():  # another process may have created it meanwhile
                    atomic_write(path, EXAMPLE_FILE)
                    out.info(f"created {path} with a commented example")
        except LockTimeout as exc:
            raise ProfileError(str(path), str(exc), hint="try again") from None
        except OSError as exc:
            raise ProfileError(str(path), f"cannot create it: {exc.strerror or exc}") from None
    try:
        completed = subprocess.run([*command, str(path)], check=False)
    except FileNotFoundError:
        raise UsageError(
            f"cannot run the editor {command[0]!r}: not found",
            hint="set $VISUAL or $EDITOR to an installed editor",
        ) from None
    if completed.returncode != 0:
        raise ResidentError(
            f"the editor exited with status {completed.returncode}",
            hint=f"the file is as the editor left it; check it with `ollama-resident profile "
            f"list` ({path})",
        )
    try:
        pf = profiles.load(path)
    except ProfileError as exc:
        raise ProfileError(
            exc.path,
            exc.detail,
            line=exc.line,
            location=exc.location,
            hint="the file is saved as you left it; run `ollama-resident profile edit` again to "
            "fix it (commands that use profiles fail until then)",
        ) from None
    if pf.profiles:
        count = len(pf.profiles)
        out.success(
            f"{path} is valid: {count} profile{'s' if count != 1 else ''} ({', '.join(pf.names)})"
        )
    else:
        out.info(f"{path} is valid but has no profiles yet")


# Registered here, in the order `--help` lists them.
profile_app.command("list")(profile_list)
profile_app.command("show")(profile_show)
profile_app.command("save")(profile_save)
profile_app.command("add")(profile_add)
profile_app.command("remove")(profile_remove)
profile_app.command("rm", hidden=True)(profile_remove)
profile_app.command("path")(profile_path)
profile_app.command("edit")(profile_edit)


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")
