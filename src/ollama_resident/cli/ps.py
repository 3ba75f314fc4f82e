"""``ps``: what is loaded now, as Ollama's own ``ps`` shows it, with live countdowns."""

from __future__ import annotations

from typing import Annotated

import typer

from ollama_resident.cli._options import HostsOpt, JsonOpt, TimeoutOpt

__all__ = ["register"]


def ps(
    ctx: typer.Context,
    prefix: Annotated[
        str | None,
        typer.Argument(help="Only models whose name starts with this.", show_default=False),
    ] = None,
    json_output: JsonOpt = False,
    host: HostsOpt = None,
    all_hosts: Annotated[
        bool,
        typer.Option(
            "--all-hosts",
            "-A",
            help="Every host the profiles file names (and $OLLAMA_HOST or the default), "
            "with any --host, asked at once.",
        ),
    ] = False,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Show the models Ollama has in memory and how long each stays.

    UNTIL is "Forever" for a pinned model, a countdown such as "4m 12s"
    otherwise, and "busy or stopping" when the deadline has passed but the
    model is still listed: a request is running on it, and it either stays
    once that ends (it outlived its keep-alive while busy) or unloads then
    (it was unloaded while busy). `watch` tells these apart over time.

    With several --host (or --all-hosts) every host is asked at once: one
    table with a HOST column (JSON items get a "host" field), a host that does
    not answer is a row with its error, and the exit code is 3 only when no
    host answered, 1 when some did not.

    \b
    Examples:
      ollama-resident ps
      ollama-resident ps llama --json | jq '.[].expires_in_s'
      ollama-resident ps --host laptop --host gpu-box:11434
      ollama-resident ps --all-hosts --json | jq -r '.[] | [.host, .name] | @tsv'
    """
    if all_hosts or (host is not None and len(host) > 1):
        from ollama_resident.cli import _ps_hosts
        from ollama_resident.cli._common import state
        from ollama_resident.cli._many import hosts_of

        if all_hosts:
            hosts = _ps_hosts.all_hosts(state(ctx).profiles, host or [])
        else:
            hosts = hosts_of(host)
        _ps_hosts.ps_hosts(hosts, prefix, json_output=json_output, timeout=timeout)
        return
    from ollama_resident import render
    from ollama_resident.cli._common import make_client
    from ollama_resident.cli._output import Output

    out = Output(json=json_output)
    with make_client(host[0] if host else None, timeout=timeout) as client:
        snapshot = client.ps().filter_prefix(prefix)
    now = snapshot.taken_at
    if json_output:
        out.data(render.dumps(render.ps_json(snapshot, now)))
        return
    if not snapshot.models:
        what = f"matching {prefix!r} " if prefix else ""
        out.info(f"No models {what}loaded on {client.display_url}.")
        return
    if out.rich_stdout:
        out.out_console().print(render.ps_styled(snapshot, now, out.width), soft_wrap=True)
    else:
        out.data(render.ps_table(snapshot, now, out.width).plain())


def register(app: typer.Typer) -> None:
    app.command("ps")(ps)
