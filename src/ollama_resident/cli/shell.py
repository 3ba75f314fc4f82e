"""``shell-init SHELL PROFILE``: the line that brings a profile in when a shell starts."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

__all__ = ["register"]


class Shell(str, enum.Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def shell_init(
    ctx: typer.Context,
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
    profile: Annotated[str, typer.Argument(help="The profile to apply.", show_default=False)],
) -> None:
    """Print the lines that apply a profile each time a shell starts; paste them in its rc file.

    The shell runs them in the background and returns to its prompt at once (no
    Python starts before the prompt; measured: about 1 ms). In the background,
    `apply PROFILE --background` takes the profile's lock (ten terminals opened
    together make one load) and starts a detached `apply`, whose output goes to
    apply-PROFILE.log in the state directory, beside the journal (`journal path`).
    Nothing is ever printed over your prompt: if the apply fails, the next
    ollama-resident command you run on a terminal says so, once.

    Paste the output; do not `eval "$(ollama-resident shell-init ...)"`, which
    would start Python, about a tenth of a second, in every new shell.

    \b
    Examples:
      ollama-resident shell-init bash work >> ~/.bashrc
      ollama-resident shell-init zsh work >> ~/.zshrc
      ollama-resident shell-init fish work >> ~/.config/fish/config.fish
    """
    from ollama_resident import paths, profiles, startup
    from ollama_resident.cli._common import state
    from ollama_resident.cli._output import Output

    option = state(ctx).profiles
    profiles.resolve(profile, option)  # an unknown name exits 2 now, not at every shell start
    file = str(paths.profiles_path(option).resolve()) if option else None
    Output().data(startup.startup_line(shell.value, profile, file).rstrip("\n"))


def register(app: typer.Typer) -> None:
    app.command("shell-init")(shell_init)
