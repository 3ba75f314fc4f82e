"""``doctor``'s checks: the configuration problems that defeat residency, found before they bite.

Pure: a :class:`DoctorInput` (what the server said, the server facts, this shell's
environment, a profile, the journal's recent events) goes in, a list of
:class:`Check` comes out, one per line of output. Each problem carries its evidence
(every value with its source) and the exact fix for the service manager found
(:func:`fix_text`). Why each check matters: ``docs/doctor.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ollama_resident.models import ModelInfo, PsSnapshot, canonical_name, human_bytes
from ollama_resident.serverfacts import ServerFacts, describe_value, same_setting

if TYPE_CHECKING:
    from ollama_resident.events import Event
    from ollama_resident.factsources import Manager
    from ollama_resident.plan import Installed
    from ollama_resident.profiles import Profile

__all__ = [
    "CLOCK_TOLERANCE_S",
    "Check",
    "DoctorInput",
    "GuardService",
    "Status",
    "clock_offset",
    "every_fix",
    "fix_text",
    "parse_version",
    "run_checks",
]

Status = Literal["ok", "warn", "fail"]
CLOCK_TOLERANCE_S = 2.0

# Variables the `ollama` client (or this tool) reads in the user's shell, where a value
# different from the server's is normal.
_CLIENT_SIDE = {"OLLAMA_HOST", "OLLAMA_NOHISTORY", "OLLAMA_EDITOR", "OLLAMA_API_KEY"}
# A shell value for these that the server does not have changes what stays loaded.
_RESIDENCY = {
    "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_SCHED_SPREAD",
    "OLLAMA_GPU_OVERHEAD",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_MODELS",
}


@dataclass(frozen=True)
class Check:
    """One line of ``doctor``: a status, a one-line finding, evidence lines and a fix."""

    id: str
    status: Status
    summary: str
    evidence: tuple[str, ...] = ()
    fix: str | None = None
    settings: tuple[tuple[str, str], ...] = ()  # server settings the fix gives it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "server_settings": dict(self.settings),
        }


@dataclass(frozen=True)
class GuardService:
    """The guard service for a profile: its unit/label, and what the service manager says."""

    name: str
    path: str
    installed: bool
    running: bool | None  # None: could not ask
    enable: str  # the command that enables and starts it


@dataclass(frozen=True)
class DoctorInput:
    """Everything the checks look at; gathered by the CLI, nothing read here."""

    url: str
    version: str
    facts: ServerFacts
    manager: Manager
    shell_env: Mapping[str, str]
    snapshot: PsSnapshot
    now: datetime
    profile: Profile | None = None
    installed: Mapping[str, Installed] = field(default_factory=dict)
    model_info: Mapping[str, ModelInfo] = field(default_factory=dict)  # by canonical name
    journal: Sequence[Event] = ()  # this host's events (resets: the last 24 h; sizes: any)
    journal_path: str = ""
    guard_service: GuardService | None = None
    clock_offset_s: float | None = None  # server minus this machine
    clock_error_s: float = 1.0  # the Date header has whole seconds


# -- versions ----------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``0.24.0``, ``v0.6.4-rc1``, ``0.1.38`` -> a tuple; None for a dev build.

    >>> parse_version("0.24.0"), parse_version("v0.6.4-rc1"), parse_version("0.0.0")
    ((0, 24, 0), (0, 6, 4), None)
    """
    t = text.strip().lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts = t.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:3]):
        return None
    nums = tuple(int(p) for p in parts[:3]) + (0,) * (3 - len(parts[:3]))
    version = (nums[0], nums[1], nums[2])
    return None if version == (0, 0, 0) else version


def clock_offset(date_header: str | None, sent: float, received: float) -> float | None:
    """Seconds the server's clock is ahead of ours, from an HTTP ``Date`` header.

    ``sent``/``received`` are this machine's clock (epoch seconds) around the request.
    The header has whole seconds (truncated), so the server's time is taken half a second
    on; the result is good to about ±(1 + round trip / 2) s. None without a usable header.

    >>> clock_offset("Sun, 29 Nov 2026 18:00:10 GMT", 1795975199.9, 1795975200.1)
    10.5
    """
    if not date_header:
        return None
    from email.utils import parsedate_to_datetime

    try:
        server_time = parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None
    return round(server_time + 0.5 - (sent + received) / 2, 3)


# -- fixes -------------------------------------------------------------------------------------


def _systemd_env(key: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'Environment="{key}={escaped}"'


def _sh(word: str) -> str:
    import shlex

    return shlex.quote(word)


def fix_text(manager: Manager, settings: Mapping[str, str], *, every_form: bool = False) -> str:
    """How to give the server ``settings``, for the service manager that runs it.

    systemd: a drop-in and the two commands that apply it; launchd (the macOS app):
    ``launchctl setenv`` and a restart of the app; docker: ``-e`` / compose
    ``environment:``; a server started by hand: the command line. When the manager is
    unknown: a pointer to :func:`every_fix` (all forms once, printed after the checks),
    or with ``every_form`` all of them.
    """
    items = list(settings.items())
    if manager.kind == "unknown" and not every_form:
        assignments = " ".join(f"{k}={v}" for k, v in items)
        return f"set {assignments} where the server is started (how: see the end)"
    systemd = "\n".join(
        [
            "systemd: put this in /etc/systemd/system/ollama.service.d/override.conf "
            "(or run `sudo systemctl edit ollama`):",
            "  [Service]",
            *(f"  {_systemd_env(k, v)}" for k, v in items),
            "then:",
            "  sudo systemctl daemon-reload",
            "  sudo systemctl restart ollama",
        ]
    )
    if manager.kind == "systemd" and manager.name not in ("", "ollama.service"):
        unit = manager.name.removesuffix(".service")
        systemd = systemd.replace("ollama.service.d", f"{unit}.service.d")
        systemd = systemd.replace("systemctl edit ollama", f"systemctl edit {unit}")
        systemd = systemd.replace("systemctl restart ollama", f"systemctl restart {unit}")
    launchd = "\n".join(
        [
            "macOS app: run",
            *(f"  launchctl setenv {k} {_sh(v)}" for k, v in items),
            "then quit Ollama from the menu bar and open it again.",
        ]
    )
    name = manager.name if manager.kind == "docker" and manager.name else "ollama"
    docker = "\n".join(
        [
            f"docker: re-create the container {name} with "
            + " ".join(f"-e {_sh(f'{k}={v}')}" for k, v in items)
            + ", or in compose:",
            "  environment:",
            *(f"    - {k}={v}" for k, v in items),
            "then `docker compose up -d`.",
        ]
    )
    assignments = " ".join(_sh(f"{k}={v}") for k, v in items)
    shell = "\n".join(
        [
            "a server started by hand: stop it and start it again as",
            f"  {assignments} ollama serve",
        ]
    )
    forms = {"systemd": systemd, "launchd": launchd, "docker": docker, "shell": shell}
    if manager.kind in forms:
        return forms[manager.kind]
    return "\n".join([systemd, launchd, docker, shell])


def every_fix(manager: Manager, checks: Sequence[Check]) -> str | None:
    """One block with every server setting the checks ask for, in every form.

    Only when the service manager is unknown (otherwise each fix is complete).
    """
    if manager.kind != "unknown":
        return None
    settings: dict[str, str] = {}
    for check in checks:
        if check.status != "ok":
            settings.update(dict(check.settings))
    if not settings:
        return None
    return fix_text(manager, settings, every_form=True)


def _manager_words(manager: Manager) -> str:
    if manager.kind == "unknown":
        return f"service manager unknown ({manager.evidence})"
    return f"run by {manager.kind} ({manager.evidence})"


# -- the checks --------------------------------------------------------------------------------


def _server(inp: DoctorInput) -> Check:
    return Check("server", "ok", f"Ollama {inp.version or '(no version)'} answers at {inp.url}")


def _features(inp: DoctorInput) -> Check:
    v = parse_version(inp.version)
    if not inp.version:
        return Check(
            "features",
            "fail",
            "the server has no /api/version: it is older than any release this tool knows",
            fix="upgrade Ollama (https://ollama.com/download)",
        )
    if v is None:
        return Check(
            "features",
            "warn",
            f"version {inp.version!r} is not a release: features are assumed from the newest",
        )
    shown = ".".join(map(str, v))
    if v < (0, 1, 38):
        return Check(
            "features",
            "fail",
            f"Ollama {shown} has no /api/ps (0.1.38+): nothing can see what is loaded",
            fix="upgrade Ollama (https://ollama.com/download)",
        )
    lacks: list[str] = []
    # What the server's own answers show beats what its version number promises.
    no_caps = bool(inp.model_info) and all(not i.capabilities for i in inp.model_info.values())
    no_ctx = bool(inp.snapshot.models) and all(not m.context_length for m in inp.snapshot.models)
    if v < (0, 2, 0):
        lacks.append("loads after the first reset the keep-alive of a loaded model (0.2.0+)")
    if v < (0, 3, 11):
        lacks.append("no unload shortcut: `unload` loads a model to unload it (0.3.11+)")
    if v < (0, 6, 4) or no_caps:
        lacks.append(
            "no `capabilities` in /api/show: embedding models are told by their family (0.6.4+)"
        )
    if v < (0, 10, 0) or no_ctx:
        lacks.append(
            "no `context_length` in /api/ps: a loaded model's context is unknown, so a "
            "profile's num_ctx cannot be checked (0.10.0+)"
        )
    if lacks:
        return Check(
            "features",
            "warn",
            f"Ollama {shown} lacks {len(lacks)} feature{'s' if len(lacks) != 1 else ''} "
            "this tool uses",
            tuple(lacks),
            "upgrade Ollama (https://ollama.com/download)",
        )
    return Check("features", "ok", f"Ollama {shown} has /api/ps, capabilities and context_length")


def _config(inp: DoctorInput) -> Check:
    f = inp.facts
    if not f.known:
        return Check(
            "config",
            "warn",
            "the server's settings are unknown: limits below are Ollama's usual defaults",
            (f"reason: {f.reason}", _manager_words(inp.manager)),
            "give doctor the server's log: --server-log FILE (or - with `journalctl -u ollama "
            "| ollama-resident doctor --server-log -`); as another user, read it with sudo",
        )
    evidence = [_manager_words(inp.manager)]
    if f.started_at is not None:
        evidence.append(f"server started {f.started_at.isoformat(timespec='seconds')}")
    if f.devices:
        evidence.append(
            "devices: "
            + ", ".join(
                f"{d.name or d.id} ({d.library}) "
                f"{human_bytes(d.available) if d.available is not None else '?'} available of "
                f"{human_bytes(d.total) if d.total is not None else '?'}"
                for d in f.devices
            )
        )
    return Check("config", "ok", f"server settings read from {f.origin}", tuple(evidence))


def _shell(inp: DoctorInput) -> list[Check]:
    out: list[Check] = []
    mine = {
        k: v
        for k, v in sorted(inp.shell_env.items())
        if k.startswith("OLLAMA_") and k not in _CLIENT_SIDE and not k.startswith("OLLAMA_RESIDENT")
    }
    if not mine:
        return [Check("shell", "ok", "no OLLAMA_* server setting in this shell")]
    unknown: list[str] = []
    agree: list[str] = []
    for key, value in mine.items():
        server = inp.facts.setting(key)
        if server is None:
            if inp.facts.known and inp.facts.from_log:
                continue  # a key this server version does not have: not a server setting
            unknown.append(key)
            continue
        if same_setting(key, value, server.raw):
            agree.append(key)
            continue
        status: Status = "fail" if key in _RESIDENCY else "warn"
        out.append(
            Check(
                f"shell:{key}",
                status,
                f"{key} is {describe_value(key, value)} in this shell but "
                f"{describe_value(key, server.raw)} on the server: the server never sees "
                "this shell's environment",
                (
                    f"this shell: {key}={value}",
                    f"server: {key}={server.raw}"
                    + (" (Ollama's default)" if server.default else "")
                    + f", from {server.source}",
                ),
                "to make the server use it, "
                + fix_text(inp.manager, {key: value})
                + f"\nor, if the server's value is right, remove {key} from your shell's "
                "startup file",
                ((key, value),),
            )
        )
    if unknown:
        out.append(
            Check(
                "shell",
                "warn",
                "this shell sets "
                + ", ".join(unknown)
                + ": the server's values are unknown, so they cannot be compared",
                ("why: see the config check",),
            )
        )
    if agree and not out:
        out.append(Check("shell", "ok", "this shell's " + ", ".join(agree) + " match the server"))
    return out


def _plan_evictions(
    inp: DoctorInput, *, max_loaded: int | None, memory: int | None, source: str | None = None
) -> list[str]:
    """Messages for evictions of the profile's own models that loading it would cause."""
    from ollama_resident.plan import make_plan

    assert inp.profile is not None
    installed = dict(inp.installed)
    for name, (size, _when) in _journal_sizes(inp.journal).items():
        if name in installed and installed[name].size < size:
            # The size it took in memory beats the size of its file.
            installed[name] = replace(installed[name], size=size)
    plan = make_plan(
        inp.profile,
        inp.snapshot,
        installed=installed or None,
        max_loaded=max_loaded,
        memory=memory,
        now=inp.now,
        max_loaded_label=source,
    )
    return [e.message for e in plan.evictions if e.in_profile]


def _max_loaded(inp: DoctorInput) -> Check:
    cap = inp.facts.max_loaded()
    if inp.profile is None or cap.value is None:
        return Check(
            "max-loaded",
            "ok" if cap.known else "warn",
            f"the server keeps at most {cap.value} models loaded",
            (f"from: {cap.source}",),
        )
    n = len(inp.profile.models)
    if n <= cap.value:
        return Check(
            "max-loaded",
            "ok",
            f'profile "{inp.profile.name}" has {n} model{"s" if n != 1 else ""}; '
            f"the server keeps up to {cap.value}" + ("" if cap.known else " (assumed)"),
            (f"from: {cap.source}",),
        )
    evictions = _plan_evictions(inp, max_loaded=cap.value, memory=None, source=cap.short)
    return Check(
        "max-loaded",
        "fail" if cap.known else "warn",
        f'profile "{inp.profile.name}" has {n} models but the server keeps at most '
        f"{cap.value} loaded: they cannot all stay",
        (f"from: {cap.source}", *evictions),
        f"keep at most {cap.value} models in the profile, or (if memory allows) raise the cap: "
        + fix_text(inp.manager, {"OLLAMA_MAX_LOADED_MODELS": str(n)}),
        (("OLLAMA_MAX_LOADED_MODELS", str(n)),),
    )


def _journal_sizes(journal: Sequence[Event]) -> dict[str, tuple[int, datetime]]:
    """The newest size each model had when loaded, from the journal's /api/ps records."""
    sizes: dict[str, tuple[int, datetime]] = {}
    for e in journal:
        size = e.detail.get("size")
        if e.event == "loaded" and e.model and isinstance(size, int) and size > 0:
            sizes[canonical_name(e.model)] = (size, e.time)
    return sizes


def _profile_sizes(inp: DoctorInput) -> tuple[int, list[str], list[str]]:
    assert inp.profile is not None
    total = 0
    parts: list[str] = []
    missing: list[str] = []
    history = _journal_sizes(inp.journal)
    for pm in inp.profile.models:
        loaded = inp.snapshot.find(pm.name)
        if loaded is not None and loaded.size:
            total += loaded.size
            parts.append(f"{loaded.name} {human_bytes(loaded.size)} (loaded, /api/ps)")
            continue
        seen = history.get(canonical_name(pm.name))
        if seen is not None:
            total += seen[0]
            parts.append(
                f"{canonical_name(pm.name)} {human_bytes(seen[0])} (loaded "
                f"{seen[1].isoformat(timespec='minutes')}, /api/ps in the journal)"
            )
            continue
        info = inp.installed.get(canonical_name(pm.name))
        if info is not None and info.size:
            total += info.size
            parts.append(f"{info.name} at least {human_bytes(info.size)} (file size, /api/tags)")
        else:
            missing.append(pm.name)
    return total, parts, missing


def _pushed_out_within(inp: DoctorInput) -> list[str]:
    """Journal evidence, the last 24 h, that the profile's models do not fit together: one of
    them evicted (``unloaded``/``evicted``, recorded by the loading command) by a load of
    another. Newest last, one line each."""
    if inp.profile is None:
        return []
    mine = {canonical_name(pm.name) for pm in inp.profile.models}
    since = inp.now - timedelta(hours=24)
    lines: list[str] = []
    for e in inp.journal:
        if e.reason != "evicted" or e.model is None or e.time < since:
            continue
        by = [str(b) for b in e.detail.get("by_models") or ()]
        if canonical_name(e.model) in mine and any(canonical_name(b) in mine for b in by):
            action, prof = e.detail.get("action"), e.detail.get("profile")
            what = f" (`{action}{' ' + str(prof) if prof else ''}`)" if action else ""
            lines.append(
                f"journal {e.time.astimezone().strftime('%Y-%m-%d %H:%M')}: {e.model} was "
                f"pushed out by {', '.join(by)}{what}"
            )
    return lines


def _memory(inp: DoctorInput) -> Check | None:
    if inp.profile is None:
        mem = inp.facts.memory()
        if mem.value is None:
            return None
        return Check(
            "memory", "ok", f"{human_bytes(mem.value)} for models", (f"from: {mem.source}",)
        )
    mem = inp.facts.memory()
    total, parts, missing = _profile_sizes(inp)
    evidence = [*parts]
    if missing:
        evidence.append("size unknown (not installed?): " + ", ".join(missing))
    if mem.value is None:
        return Check(
            "memory",
            "warn",
            f'profile "{inp.profile.name}" needs at least {human_bytes(total)}; the server\'s '
            "memory is unknown",
            (*evidence, f"memory: {mem.source}"),
        )
    evidence.append(f"memory: {human_bytes(mem.value)}, {mem.source}")
    pushed = _pushed_out_within(inp)
    if total <= mem.value and pushed:
        # The sizes say it fits, but Ollama pushed the profile's models out by each other
        # (its own estimate counts the context's KV cache and graph, `server/sched.go`).
        return Check(
            "memory",
            "warn",
            f'profile "{inp.profile.name}" needs about {human_bytes(total)} of '
            f"{human_bytes(mem.value)} by file sizes, but its models pushed each other out "
            f"{len(pushed)} time{'s' if len(pushed) != 1 else ''} in the last 24 h",
            (*evidence, *pushed[-3:]),
            "Ollama's estimate (with the context's KV cache) is larger than these sizes: "
            "a smaller num_ctx, smaller models, or fewer models in the profile",
        )
    if total <= mem.value:
        return Check(
            "memory",
            "ok",
            f'profile "{inp.profile.name}" needs about {human_bytes(total)} of '
            f"{human_bytes(mem.value)}",
            tuple(evidence),
        )
    evictions = _plan_evictions(inp, max_loaded=None, memory=mem.value)
    return Check(
        "memory",
        "fail",
        f'profile "{inp.profile.name}" needs about {human_bytes(total)} but the server has '
        f"{human_bytes(mem.value)}: they cannot all stay",
        (*evidence, *evictions),
        "use smaller models or quantizations, a smaller num_ctx, or fewer models in the profile",
    )


def _num_ctx(inp: DoctorInput) -> list[Check]:
    if inp.profile is None:
        return []
    out: list[Check] = []
    over: list[str] = []
    for pm in inp.profile.models:
        info = inp.model_info.get(canonical_name(pm.name))
        if pm.num_ctx is None or info is None or not info.context_length:
            continue
        if pm.num_ctx > info.context_length:
            over.append(
                f"{pm.name}: num_ctx {pm.num_ctx} > its training context {info.context_length}"
                f" (/api/show); Ollama caps it to {info.context_length}"
            )
    if over:
        out.append(
            Check(
                "num-ctx",
                "warn",
                f"{len(over)} model{'s' if len(over) != 1 else ''} of profile "
                f'"{inp.profile.name}" ask more context than they were trained on',
                tuple(over),
                "set num_ctx to the training context (or less) in the profile "
                "(`ollama-resident profile edit`)",
            )
        )
    elif any(pm.num_ctx for pm in inp.profile.models):
        out.append(
            Check("num-ctx", "ok", "every num_ctx in the profile is within the model's training")
        )
    return out


def _context_length(inp: DoctorInput) -> Check | None:
    if inp.profile is None or not any(pm.num_ctx for pm in inp.profile.models):
        return None
    default, source = inp.facts.default_context()
    if default is None:
        return Check(
            "context-length",
            "warn",
            "the server's default context is unknown: cannot tell whether other clients "
            "make Ollama reload the profile's models",
            ("why: see the config check",),
        )
    clashes: list[str] = []
    wanted: set[int] = set()
    for pm in inp.profile.models:
        if pm.num_ctx is None:
            continue
        info = inp.model_info.get(canonical_name(pm.name))
        training = info.context_length if info is not None else None
        mine = min(pm.num_ctx, training) if training else pm.num_ctx
        theirs = min(default, training) if training else default
        if mine != theirs:
            wanted.add(pm.num_ctx)
            clashes.append(
                f"{pm.name}: the profile loads it with context {mine}; a request without "
                f"num_ctx gets {theirs} and makes Ollama reload it (losing its pin)"
            )
    if not clashes:
        return Check(
            "context-length",
            "ok",
            f"the profile's contexts match the server's default ({default})",
            (f"from: {source}",),
        )
    fix = "drop num_ctx from the profile so every client gets the same context"
    settings: tuple[tuple[str, str], ...] = ()
    if len(wanted) == 1:
        settings = (("OLLAMA_CONTEXT_LENGTH", str(next(iter(wanted)))),)
        fix = (
            "make the server's default the profile's: "
            + fix_text(inp.manager, dict(settings))
            + "\nor "
            + fix
        )
    return Check(
        "context-length",
        "warn",
        f"the server's default context is {default}: clients that send no num_ctx "
        "reload the profile's models",
        (f"default from: {source}", *clashes),
        fix,
        settings,
    )


def _pin_resets(inp: DoctorInput) -> Check:
    since = inp.now - timedelta(hours=24)
    resets = [
        e
        for e in inp.journal
        if e.event == "keep_alive_changed"
        and e.reason in ("pin_lost", "window_changed")
        and not e.by_tool
        and e.time >= since
    ]
    wanted = None
    if inp.profile is not None:
        wanted = {canonical_name(m.name) for m in inp.profile.models}
        resets = [e for e in resets if e.model and canonical_name(e.model) in wanted]
    if not resets:
        recorded = any(e.time >= since for e in inp.journal)
        return Check(
            "pin-resets",
            "ok" if recorded else "warn" if inp.profile is not None else "ok",
            "no keep-alive reset by another client in the journal's last 24 h"
            if recorded
            else "the journal has nothing from the last 24 h: resets by other clients "
            "would not be seen",
            (f"journal: {inp.journal_path}",) if inp.journal_path else (),
            None if recorded else "run `ollama-resident watch` or `guard` to record them",
        )
    models = sorted({e.model or "?" for e in resets})
    evidence = [
        f"{e.time.isoformat(timespec='seconds')} {e.model}: "
        f"{e.detail.get('before', '?')} -> {e.detail.get('after', '?')}"
        for e in resets[-5:]
    ]
    target = f"--profile {_sh(inp.profile.name)}" if inp.profile else " ".join(models)
    return Check(
        "pin-resets",
        "warn",
        f"{len(resets)} keep-alive reset{'s' if len(resets) != 1 else ''} by other clients in "
        f"the last 24 h ({', '.join(models)})",
        tuple(evidence),
        f"`ollama-resident guard {target}` re-pins at once; "
        + (
            f"`ollama-resident service install --profile {_sh(inp.profile.name)}` keeps it running"
            if inp.profile
            else "put the models in a profile and `ollama-resident service install` it"
        ),
    )


def _guard_service(inp: DoctorInput) -> Check | None:
    g = inp.guard_service
    if inp.profile is None or g is None:
        return None
    name = inp.profile.name
    if not g.installed:
        return Check(
            "guard-service",
            "ok",
            f'no guard service for profile "{name}" (optional: it restores pins and evicted '
            "models)",
            (f"looked for {g.path}",),
            f"`ollama-resident service install --profile {_sh(name)}`, then `{g.enable}`",
        )
    if g.running:
        return Check("guard-service", "ok", f"guard service {g.name} is installed and running")
    return Check(
        "guard-service",
        "warn",
        f"guard service {g.name} is installed but "
        + ("not running" if g.running is False else "its state is unknown"),
        (f"file: {g.path}",),
        g.enable,
    )


def _log_level(inp: DoctorInput) -> Check:
    level = inp.facts.log_level()
    if level is None:
        return Check(
            "log-level",
            "warn",
            "the server's log level is unknown: at INFO (the default) its log never says why "
            "a model was unloaded",
            ("why: see the config check",),
            "to have the causes logged, start the server with OLLAMA_DEBUG=1 (as for any "
            "setting: see the config check and docs/doctor.md)",
        )
    setting = inp.facts.setting("OLLAMA_DEBUG")
    source = f"OLLAMA_DEBUG={setting.raw}, from {setting.source}" if setting else ""
    if level in ("DEBUG", "TRACE"):
        return Check("log-level", "ok", f"the server logs at {level}", (source,))
    return Check(
        "log-level",
        "warn",
        f"the server logs at {level}: its log never names why a model was unloaded, so "
        "`why` cannot be certain of unload causes",
        (source,),
        fix_text(inp.manager, {"OLLAMA_DEBUG": "1"}),
        (("OLLAMA_DEBUG", "1"),),
    )


def _behind_something(url: str, listen: str) -> bool:
    """True when ``url`` is not the server's own port over plain http (a proxy answers)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    tail = listen.split("://", 1)[-1].rsplit(":", 1)
    own = int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 11434
    return parts.scheme == "https" or bool(parts.path.strip("/")) or parts.port != own


def _exposure(inp: DoctorInput) -> Check:
    notes: list[str] = []
    evidence: list[str] = []
    host = inp.facts.setting("OLLAMA_HOST")
    listening = inp.facts.listening or ""
    bound = ""
    if host is not None:
        value = host.raw.split("://", 1)[-1]
        bound = value.rsplit(":", 1)[0] if value.count(":") == 1 or "]" in value else value
        evidence.append(f"OLLAMA_HOST={host.raw}, from {host.source}")
    if listening:
        evidence.append(f"Listening on {listening}")
    everyone = bound in ("0.0.0.0", "[::]", "::", "") and host is not None and not host.default
    if listening.startswith(("[::]:", "0.0.0.0:", ":")):
        everyone = True
    if everyone and _behind_something(inp.url, listening or (host.raw if host else "")):
        evidence.append(
            f"reached at {inp.url}: another scheme or port than the server's, so something "
            "(a proxy) is in front of it"
        )
    elif everyone:
        notes.append(
            "the server listens on all interfaces: anyone who reaches its port can load, "
            "unload and delete models, unless something with authentication is in front of it"
        )
    origins = inp.facts.setting("OLLAMA_ORIGINS")
    if origins is not None and "*" in origins.raw.strip("[]").split():
        notes.append("OLLAMA_ORIGINS allows any web page (*) to call the server from a browser")
        evidence.append(f"OLLAMA_ORIGINS includes *, from {origins.source}")
    if not inp.facts.known:
        return Check("exposure", "ok", "network exposure not checked (settings unknown)")
    if not notes:
        return Check("exposure", "ok", "the server is not open to the network", tuple(evidence))
    return Check(
        "exposure",
        "warn",
        "; ".join(notes),
        tuple(evidence),
        "a note, not a failure: bind it to 127.0.0.1 (OLLAMA_HOST=127.0.0.1:11434) or put a "
        "reverse proxy with authentication in front of it",
    )


def _clock(inp: DoctorInput) -> Check:
    off = inp.clock_offset_s
    if off is None:
        return Check("clock", "warn", "the server sent no Date header: clock offset unknown")
    if abs(off) <= CLOCK_TOLERANCE_S + inp.clock_error_s:
        return Check(
            "clock", "ok", f"the server's clock agrees with this machine's (±{abs(off):.0f} s)"
        )
    direction = "ahead of" if off > 0 else "behind"
    return Check(
        "clock",
        "warn",
        f"the server's clock is {abs(off):.0f} s {direction} this machine's: every countdown "
        "(expires_at) is off by that much",
        ("from the HTTP Date header of /api/version",),
        "synchronise both clocks (e.g. `timedatectl set-ntp true`, chrony or ntpd)",
    )


def run_checks(inp: DoctorInput) -> list[Check]:
    """Every check, in the order they are printed."""
    checks: list[Check] = [_server(inp), _features(inp), _config(inp)]
    checks.extend(_shell(inp))
    checks.append(_max_loaded(inp))
    memory = _memory(inp)
    if memory is not None:
        checks.append(memory)
    checks.extend(_num_ctx(inp))
    context = _context_length(inp)
    if context is not None:
        checks.append(context)
    checks.append(_pin_resets(inp))
    guard = _guard_service(inp)
    if guard is not None:
        checks.append(guard)
    checks.append(_log_level(inp))
    checks.append(_exposure(inp))
    checks.append(_clock(inp))
    return checks
