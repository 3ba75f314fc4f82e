"""``why [MODEL]``: the recent life of a model in plain words, from the journal and the
server's own log."""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollama_resident.cli._complete import journal_models
from ollama_resident.cli._options import HostOpt, JsonOpt

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ollama_resident.cli._progress import Activity
    from ollama_resident.logsource import LogSource, ServerLines
    from ollama_resident.logstory import LogInfo, TotalStory
    from ollama_resident.logtimeline import Timeline

__all__ = ["register"]

_NAME_LOOKUPS = 40  # /api/show calls at most, to name the blobs of an INFO log


def why(
    model: Annotated[
        str | None,
        typer.Argument(
            help="The model, as you type it: llama3.2, qwen2.5:14b, ns/model:tag. "
            "Without it: every model in the window (--since, default 2h).",
            show_default=False,
            autocompletion=journal_models,
        ),
    ] = None,
    server_log: Annotated[
        str | None,
        typer.Option(
            "--server-log",
            help="Read Ollama's server log from FILE (or - for stdin) instead of finding it.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    docker: Annotated[
        str | None,
        typer.Option(
            "--docker",
            help="Read the server log of this Docker container (`docker logs`).",
            metavar="CONTAINER",
            show_default=False,
        ),
    ] = None,
    no_server_log: Annotated[
        bool,
        typer.Option("--no-server-log", help="Tell the story from the journal alone."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only what happened in this last DURATION (e.g. 30m, 2h). "
            "Default: everything read for one model (the newest --limit items shown), "
            "2h without one.",
            metavar="DURATION",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            help="Show a model's N newest items (0: all); a note says how many were left "
            "out and how far back the shown ones reach.",
            metavar="N",
            min=0,
        ),
    ] = 30,
    log_mb: Annotated[
        int,
        typer.Option(
            "--log-mb",
            help="Read at most the last MB megabytes of the server log.",
            metavar="MB",
            min=1,
        ),
    ] = 256,
    host: HostOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Explain why a model was unloaded, reloaded or lost its pin.

    Newest first: when it loaded, what changed its keep-alive, and why it went
    away, each with the evidence, where it comes from and how sure it is.
    Two sources make one story: the journal that `watch` (or `guard`) and the
    preload, pin and unload commands write, and Ollama's own server log, found
    on this machine (journalctl -u ollama, ~/.ollama/logs/server.log,
    %LOCALAPPDATA%\\Ollama\\server.log) or given with --server-log / --docker.
    The log names every unload's cause only with OLLAMA_DEBUG=1 on the server;
    `why` says how to turn it on for the server it found. Only the journal
    entries of one server are told: --host, else OLLAMA_HOST (a note names the
    other servers the journal has entries from).

    \b
    Examples:
      ollama-resident why llama3.2
      ollama-resident why                       # every model, last 2 hours
      ollama-resident why llama3.2 --since 1d --limit 0   # a day, every item
      ollama-resident why llama3.2 --server-log ~/.ollama/logs/server.log
      journalctl -u ollama --since today | ollama-resident why llama3.2 --server-log -
      ollama-resident why qwen2.5:14b --docker ollama --json
    """
    from datetime import timezone

    from ollama_resident import logstory, render
    from ollama_resident import why as story
    from ollama_resident.cli._common import resolve_host
    from ollama_resident.cli._output import Output
    from ollama_resident.durations import DurationError, parse_window
    from ollama_resident.errors import UsageError
    from ollama_resident.journal import Journal
    from ollama_resident.models import canonical_name, names_match

    out = Output(json=json_output)
    if sum(x is not None for x in (server_log, docker)) + no_server_log > 1:
        raise UsageError(
            "give one of --server-log, --docker and --no-server-log",
            hint="--server-log FILE reads a file, --docker NAME a container's log",
        )
    now = datetime.now(timezone.utc)
    since_at: datetime | None = None
    if since is not None:
        try:
            window = parse_window(since)
        except DurationError as exc:
            raise UsageError(f"--since: {exc}", hint="e.g. --since 30m or 2h") from None
        since_at = now - timedelta(seconds=window)
    elif model is None:
        since_at = now - timedelta(hours=2)
    target = resolve_host(host)
    tz = datetime.now().astimezone().tzinfo

    source, info = _open_log(server_log, docker, no_server_log, target.host, since_at, log_mb)
    timeline: Timeline | None = None
    if source is not None:
        from ollama_resident.cli._progress import Activity
        from ollama_resident.logsource import ServerLines
        from ollama_resident.logtimeline import read_timeline

        server_lines = ServerLines()
        with Activity(out) as progress:
            progress.start(f"reading the server log: {source.describe()}")
            timeline = read_timeline(_shown(source, progress, server_lines), tz=tz)
        info = _info(source, info)
        timeline, info = _only_ollama(
            timeline, info, server_lines, explicit=server_log is not None or docker is not None
        )
    model_digest: str | None = None
    if timeline is not None and timeline.facts:
        model_digest, answered = _name_blobs(timeline, target, model)
        if answered and info is not None:
            info = dataclasses.replace(info, names_by=target.display)

    journal = Journal()
    events = journal.read()

    def tell(name: str, matches: Callable[[Any], bool]) -> TotalStory:
        """The journal's and the log's story of ``name`` (log facts chosen by ``matches``)."""
        journaled = story.build_story(
            name, events, now=now, journal=str(journal.path), host=target.display, limit=None
        )
        return logstory.tell(
            name,
            journaled,
            timeline,
            matches=matches,
            log=info,
            now=now,
            since=since_at,
            limit=limit or None,
        )

    if model is not None:
        blob = _as_blob(model)
        name = f"sha256-{blob[:12]}" if blob else canonical_name(model)

        def matches(f: Any) -> bool:
            if blob is not None:
                return bool(f.digest and f.digest.startswith(blob))
            if f.name and names_match(f.name, name):
                return True
            return model_digest is not None and f.digest == model_digest

        result = tell(name, matches)
        if json_output:
            out.data(render.dumps(logstory.to_json(result)))
        else:
            out.data(logstory.render(result, width=out.width if out.rich_stdout else None))
        if not result.items and blob is None:
            # A typo reads like a model with no history: say so, with the names that are there.
            from ollama_resident.resolve import close_matches

            seen = {e.model: None for e in events if e.model}  # every server's
            if timeline is not None:
                seen.update({f.model: None for f in timeline.facts if f.model})
            known = {canonical_name(m): None for m in seen}  # a few names, many facts
            where = "the journal or the server log" if timeline is not None else "the journal"
            if name in known:
                if since_at is not None and _older(name, since_at, events, timeline, target):
                    out.info(f"{name} has entries before the --since {since} window only.")
                return  # or from another server: the story's note says where
            near = close_matches(model, known)
            out.info(
                f'"{model}" is not in {where}'
                + ("; did you mean " + " or ".join(f'"{m}"' for m in near) + "?" if near else "")
            )
        return

    assert since_at is not None
    names: dict[str, None] = {}
    for e in events:
        if e.model and e.time >= since_at:
            names.setdefault(canonical_name(e.model), None)
    if timeline is not None:
        for f in timeline.facts:
            if f.model and f.time >= since_at:
                names.setdefault(f.model, None)
    stories = []
    for name in names:

        def matches_one(f: Any, name: str = name) -> bool:
            return bool(f.model == name)

        s = tell(name, matches_one)
        if s.items:
            stories.append(s)
    stories.sort(key=lambda s: s.items[0].time, reverse=True)
    notes = []
    ahead = logstory.clock_note(timeline, now, tz) if timeline is not None else None
    if ahead:
        notes.append(ahead)
    if timeline is not None and timeline.lines and not timeline.has_debug:
        notes.append(
            "The server log is at INFO: loads, reloads and restarts show; unload causes "
            "need OLLAMA_DEBUG=1 on the server."
        )
        notes.extend(logstory.debug_howto(info.kind if info else None, docker))
    if json_output:
        out.data(render.dumps(logstory.overview_json(stories, since=since_at, notes=notes)))
    else:
        from ollama_resident.cells import hang

        width = out.width if out.rich_stdout else None
        text = logstory.render_overview(stories, since=since_at, now=now, notes=notes, width=width)
        if not stories:
            bare = [
                part
                for line in _bare_sources(journal, info, timeline, now)
                for part in hang(line, width, "", "  ")
            ]
            text += "\n\n" + "\n".join(bare)
        out.data(text)


def _older(
    name: str, since: datetime, events: list[Any], timeline: Timeline | None, target: Any
) -> bool:
    """Whether the journal (this server's part) or the log has ``name`` before ``since``."""
    from ollama_resident.models import names_match

    if timeline is not None and any(
        f.model == name and f.time < since for f in timeline.facts if f.model
    ):
        return True
    return any(
        e.time < since and names_match(e.model, name)
        for e in events
        if e.model and (e.host == target.display or not e.host)
    )


def _as_blob(model: str) -> str | None:
    """The hex of a model given by its blob (``sha256-876d1158a74c``, as INFO logs name
    models), else None."""
    text = model.lower().removeprefix("sha256-").removeprefix("sha256:")
    if len(text) >= 12 and all(c in "0123456789abcdef" for c in text) and model != text:
        return text
    return None


def _bare_sources(
    journal: Any, info: LogInfo | None, timeline: Timeline | None, now: datetime
) -> list[str]:
    from ollama_resident.logstory import log_line

    lines = []
    if info is not None:
        if info.name and timeline is not None:
            covers = (
                (timeline.first_time, timeline.last_time)
                if timeline.first_time and timeline.last_time
                else None
            )
            level = ("DEBUG" if timeline.has_debug else "INFO") if timeline.lines else None
            lines.append(log_line(info.name, timeline.lines, covers, level, None, now))
        elif info.name:
            lines.append(f"Server log: {info.name}")
        lines.extend(f"Server log not read: {n}: {r}" for n, r in info.attempts)
    lines.append(f"Journal: {journal.path}")
    return lines


def _shown(
    source: LogSource, progress: Activity, server_lines: ServerLines
) -> Iterator[tuple[bytes, int | None, str | None]]:
    """The source's blocks, the megabytes read so far on the progress line (a terminal);
    ``server_lines`` sees each block (whether any line is Ollama's)."""
    read = shown = 0
    for block in source.blocks:
        server_lines.feed(block[0])
        read += len(block[0])
        if progress.shown and read - shown >= 8_000_000:
            shown = read
            progress.update(f"reading the server log: {source.describe()} ({read // 1_000_000} MB)")
        yield block


def _open_log(
    server_log: str | None,
    docker: str | None,
    no_server_log: bool,
    hostname: str,
    since: datetime | None,
    log_mb: int,
) -> tuple[LogSource | None, LogInfo | None]:
    from ollama_resident import logsource
    from ollama_resident.errors import UsageError
    from ollama_resident.logstory import LogInfo

    max_bytes = log_mb * 1024 * 1024
    if no_server_log:
        return None, None
    if server_log == "-":
        return logsource.from_stream(sys.stdin.buffer), None
    if server_log is not None:
        try:
            return logsource.from_file(server_log, max_bytes=max_bytes), None
        except OSError as exc:
            raise UsageError(
                f"cannot read the server log {server_log}: {exc.strerror or exc}",
                hint="on Linux it is usually `journalctl -u ollama`; on macOS "
                "~/.ollama/logs/server.log; or leave --server-log out to let why find it",
            ) from None
    if docker is not None:
        src, attempt = logsource.from_docker(docker, since=since, max_bytes=max_bytes)
        if src is None:
            return None, LogInfo(
                None, None, ((attempt.name, attempt.reason or ""),), container=docker
            )
        return src, LogInfo("docker", src.name, container=docker)
    src, attempts = logsource.discover(hostname, since=since, max_bytes=max_bytes)
    failed = tuple((a.name, a.reason or "") for a in attempts if not a.ok)
    if src is None:
        return None, LogInfo(None, None, failed)
    return src, LogInfo(src.kind, src.name, failed)


def _only_ollama(
    timeline: Timeline, info: LogInfo, server_lines: ServerLines, *, explicit: bool
) -> tuple[Timeline | None, LogInfo]:
    """The timeline of a log that holds Ollama's lines. A log of blank lines only is an
    empty log; one with lines but none of Ollama's server (a README, another program's
    log) is a usage error when it was given (--server-log, --docker), and a place tried
    and not used when it was found."""
    from ollama_resident.errors import UsageError
    from ollama_resident.logstory import LogInfo

    if server_lines.found or not timeline.lines:
        return timeline, info
    if server_lines.blank:
        return dataclasses.replace(timeline, lines=0), info
    n = timeline.lines
    why_not = f"no line of Ollama's server found in {n} line{'s' if n != 1 else ''}"
    if explicit:
        raise UsageError(
            f"{info.name}: not an Ollama server log ({why_not})",
            hint="give --docker the container that runs `ollama serve` (`docker ps`)"
            if info.kind == "docker"
            else "give the log Ollama's server writes: `journalctl -u ollama`, "
            "~/.ollama/logs/server.log, `docker logs CONTAINER`; or leave --server-log out "
            "to let why find it",
        )
    attempts = (*info.attempts, (info.name or "?", f"not an Ollama server log ({why_not})"))
    return None, LogInfo(None, None, attempts)


def _info(source: LogSource, info: LogInfo | None) -> LogInfo:
    from ollama_resident.logstory import LogInfo

    return LogInfo(
        source.kind,
        source.name,
        info.attempts if info else (),
        partial=source.partial,
        container=info.container if info else None,
    )


def _name_blobs(timeline: Timeline, target: Any, model: str | None) -> tuple[str | None, bool]:
    """Name the blobs of an INFO log through the server (``/api/show`` FROM lines), when it
    answers; returns the blob digest of ``model`` if it is known, and whether the server
    answered the look-ups (so a blob it does not name is not its own)."""
    from ollama_resident.client import OllamaClient
    from ollama_resident.errors import ResidentError
    from ollama_resident.models import canonical_name
    from ollama_resident.serverlog import blob_digest

    unnamed = timeline.digests() - set(timeline.names)
    if not unnamed and model is None:
        return None, False
    answered = False
    digest_of_model: str | None = None
    if model is not None:
        for d, n in timeline.names.items():
            if n == canonical_name(model):
                digest_of_model = d
    found: dict[str, str] = {}
    try:
        with OllamaClient(target, timeout=2.0, connect_timeout=1.0) as client:
            if model is not None and digest_of_model is None:
                digest_of_model = blob_digest(client.modelfile(model))
                if digest_of_model:
                    found[digest_of_model] = canonical_name(model)
            if unnamed - set(found):
                tags = client.tags()
                complete = len(tags) <= _NAME_LOOKUPS  # else some blobs were not looked up
                for tag in tags[:_NAME_LOOKUPS]:
                    tag_name = str(tag.get("name") or tag.get("model") or "")
                    if not tag_name:
                        continue
                    blob = blob_digest(client.modelfile(tag_name))
                    if blob and blob not in found:
                        found[blob] = canonical_name(tag_name)
                    if not unnamed - set(found):
                        break
                answered = complete or not unnamed - set(found)
            else:
                answered = True
    except ResidentError:
        pass
    return _named(timeline, found, digest_of_model), answered


def _named(timeline: Timeline, found: dict[str, str], digest: str | None) -> str | None:
    if found:
        timeline.name_models(found)
    return digest


def register(app: typer.Typer) -> None:
    app.command("why")(why)
