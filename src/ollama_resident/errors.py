"""The exceptions this tool raises, and the exit codes they map to.

Every expected failure is a :class:`ResidentError`. The CLI turns one into a
single line on stderr (plus an optional hint) and its exit code, in one place
(``ollama_resident.cli.main``); nothing else prints errors or calls ``sys.exit``.

    ResidentError                     exit 1  an operation on a model failed
    ├── UsageError                    exit 2  bad input or configuration; nothing was sent
    │   └── ProfileError              exit 2  a profile file that does not parse or validate
    ├── ServerUnreachable             exit 3  no answer at the address
    │   ├── ServerNotReady            exit 3  --wait ran out before the server answered
    │   ├── RequestTimeout            exit 3  the server accepted but did not answer in time
    │   └── NotOllama                 exit 3  something else answered (a proxy's error page,
    │                                         plain text, an empty, cut or misshapen reply)
    └── ApiError                      exit 1  Ollama answered with an error status
        ├── ModelNotFound             exit 1  the model is not installed (hint: ollama pull)
        ├── BadRequest                exit 1  Ollama rejected the request (400)
        └── ServerTooOld              exit 1  an endpoint this tool needs is missing
"""

from __future__ import annotations

import enum

__all__ = [
    "ApiError",
    "BadRequest",
    "ExitCode",
    "ModelNotFound",
    "NotOllama",
    "ProfileError",
    "RequestTimeout",
    "ResidentError",
    "ServerNotReady",
    "ServerTooOld",
    "ServerUnreachable",
    "UsageError",
    "unreachable_reason",
    "without_host",
]


class ExitCode(enum.IntEnum):
    """Exit codes, documented in README.md and docs/exit-codes.md."""

    OK = 0
    FAILED = 1  # an operation on a model failed (or some of them did)
    USAGE = 2  # usage or configuration error; nothing was sent
    UNREACHABLE = 3  # Ollama did not answer (in time, within --wait, or as Ollama)
    INTERRUPTED = 130  # a one-shot command was interrupted (Ctrl-C, SIGTERM)


class ResidentError(Exception):
    """Base class: a message for the user, an exit code and an optional hint."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def without_host(message: str, url: str) -> str:
    """``message`` (one of the errors below, as text) without the server it names, for a
    line that names that server already (``http://gpu-box:11434  error: ...``).

    ``cannot reach Ollama at URL (connection refused)`` -> ``cannot reach Ollama
    (connection refused)``; ``Ollama at URL accepted the connection but ...`` -> ``Ollama
    accepted the connection but ...``; ``not Ollama's answer from URL to GET /api/ps: ...``
    -> ``not Ollama's answer to GET /api/ps: ...``. Text that does not name ``url`` is
    returned as it is.
    """
    if not url or url not in message:
        return message
    text = message.replace(f"Ollama at {url} ", "Ollama ")
    return text.replace(f" from {url}", "").replace(f" at {url}", "")


def unreachable_reason(message: str, url: str) -> str:
    """Why ``url`` did not answer, for words that say already that it did not (``Ollama
    is not answering (connection refused)``): the reason alone of a plain "cannot reach",
    else :func:`without_host`."""
    text = without_host(message, url)
    plain = "cannot reach Ollama ("
    if text.startswith(plain) and text.endswith(")"):
        return text[len(plain) : -1]
    return text


class UsageError(ResidentError):
    """The command line or the configuration is wrong; nothing was sent."""

    exit_code = ExitCode.USAGE


class LogUnreadable(UsageError):
    """A server log that cannot be read as one: no text (``/dev/zero`` piped in), or the
    command giving it (``journalctl``, ``docker logs``) stopped answering."""


class ProfileError(UsageError):
    """A profile file that cannot be read, parsed or validated.

    ``line`` is the 1-based line of the problem when it is known; ``location``
    is a key path such as ``profiles -> coding -> models[2] -> keep_alive``.
    """

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        location: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = path if line is None else f"{path}:{line}"
        text = f"{where}: {location}: {message}" if location else f"{where}: {message}"
        super().__init__(text, hint=hint)
        self.path = path
        self.line = line
        self.location = location
        self.detail = message


class ServerUnreachable(ResidentError):
    """Nothing answered at the server address."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, url: str, reason: str = "", *, hint: str | None = None) -> None:
        text = f"cannot reach Ollama at {url}"
        if reason:
            text += f" ({reason})"
        super().__init__(
            text,
            hint=hint
            or "start it with `ollama serve` (or the Ollama app), or point OLLAMA_HOST or --host "
            "at the server",
        )
        self.url = url


class ServerNotReady(ServerUnreachable):
    """``--wait`` ran out before the server answered."""

    def __init__(self, url: str, waited: float) -> None:
        super().__init__(url, f"no answer within --wait {waited:g}s")
        self.waited = waited


class RequestTimeout(ServerUnreachable):
    """The server took the request but did not answer in time: not answering is unreachable.

    One rule for every command (exit 3): a server that accepts connections and
    never answers is as useless as one that refuses them.
    """

    def __init__(self, url: str, message: str, *, hint: str | None = None) -> None:
        ResidentError.__init__(self, message, hint=hint)
        self.url = url


class NotOllama(ServerUnreachable):
    """Something answered at the address, but not as Ollama does.

    ``status`` is the HTTP status; ``what`` says in words what came back ("an HTML
    page, probably from a proxy", "plain text: ...", "an empty reply", "JSON cut
    short", "JSON that is not Ollama's: ..."). Exit 3, like no answer at all:
    Ollama cannot be reached through whatever answered.
    """

    def __init__(self, url: str, request: str, status: int, what: str) -> None:
        ResidentError.__init__(
            self,
            f"not Ollama's answer from {url} to {request}: HTTP {status} with {what}",
            hint="something else answers at that address (a proxy, tunnel or other "
            "program); check it, or point OLLAMA_HOST or --host at Ollama itself "
            f"(`curl {url}/api/version` prints its version)",
        )
        self.url = url
        self.status = status
        self.what = what


class ApiError(ResidentError):
    """Ollama answered with an error status; ``message`` is its own ``error`` text."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ModelNotFound(ApiError):
    """The model is not installed on the server."""

    def __init__(self, model: str, message: str | None = None, status: int = 404) -> None:
        super().__init__(
            status,
            message or f"model '{model}' not found",
            hint=f"install it with `ollama pull {model}`",
        )
        self.model = model


class BadRequest(ApiError):
    """Ollama rejected the request as malformed (HTTP 400)."""


class ServerTooOld(ApiError):
    """The server lacks an endpoint this tool needs."""
