"""A thin, synchronous client for the parts of Ollama's REST API this tool uses.

It knows nothing of the command line: it sends requests, turns every httpx
failure and error status into an :mod:`ollama_resident.errors` exception at
one edge (:meth:`OllamaClient._request`), and returns parsed data.

Timeouts are per call: short for ``ps``/``show``/``version``, none at all for
reads while a model loads, because Ollama aborts a load whose client
disconnects (contract §2.2).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ollama_resident import __version__
from ollama_resident.durations import KeepAlive
from ollama_resident.errors import (
    ApiError,
    BadRequest,
    ModelNotFound,
    NotOllama,
    RequestTimeout,
    ResidentError,
    ServerTooOld,
    ServerUnreachable,
    UsageError,
)
from ollama_resident.host import Host, redact
from ollama_resident.models import (
    ModelInfo,
    PsSnapshot,
    ShapeError,
    tags_from_api,
    version_from_api,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "LoadEndpoint",
    "OllamaClient",
    "describe_reply",
    "model_names",
]

T = TypeVar("T")

# A local server accepts a connection in microseconds; a remote one on a LAN in
# milliseconds. Five seconds separates "down" from "slow" without making a
# startup script hang.
DEFAULT_CONNECT_TIMEOUT = 5.0
# ps/show/version answer from memory; 10 s means the server is wedged.
DEFAULT_TIMEOUT = 10.0

LoadEndpoint = Literal["generate", "chat", "embed", "embeddings"]

_USER_AGENT = (
    f"ollama-resident/{__version__} "
    f"({platform.system().lower()}; python/{platform.python_version()})"
)


class OllamaClient:
    """One server, one reusable HTTP connection pool, built on first use."""

    def __init__(
        self,
        host: Host,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._http: httpx.Client | None = None
        # Names /api/ps does not list, to the digest of the file that serves them
        # (`ollama cp`); set by resolve.check_names, carried by every ps() snapshot.
        self.aliases: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The server address as it may be printed (never with credentials)."""
        return self.host.display

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            transport = None
            if self.host.scheme == "http":
                # httpx's own transport imports httpcore, h11 and anyio (~20 ms of every
                # start-up); plain http goes over http.client, already loaded by httpx.
                from ollama_resident.client_transport import Http11Transport

                transport = Http11Transport()
            self._http = httpx.Client(
                base_url=self.host.url,
                headers={"User-Agent": _USER_AGENT},
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                # Building a TLS context loads the CA bundle: ~60 ms of every start-up.
                # A plain-http server never needs one (redirects are not followed).
                verify=self.host.scheme == "https",
                transport=transport,
            )
        return self._http

    def open(self) -> None:
        """Build the connection pool now (it is otherwise built on the first request)."""
        self._client()

    def close(self) -> None:
        """Close the connection; closing during a load makes Ollama abort it."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        read_timeout: float | Literal["default"] | None = "default",
        model: str | None = None,
    ) -> httpx.Response:
        import httpx

        timeout: httpx.Timeout | None = None
        if read_timeout != "default":
            timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout, read=read_timeout)
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = self._client().request(method, path, json=body, **kwargs)
        except httpx.InvalidURL as exc:  # host.check_host refuses these first
            raise UsageError(
                f"the server address {self.display_url} is not a URL: {_reason(exc)}",
                hint="give it as host:port or http://host:port (OLLAMA_HOST or --host)",
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerUnreachable(self.display_url, _reason(exc)) from None
        except httpx.TimeoutException:
            waited = self.timeout if read_timeout in ("default", None) else read_timeout
            raise RequestTimeout(
                self.display_url,
                f"Ollama at {self.display_url} accepted the connection but did not answer "
                f"{method} {path} within {waited:g}s",
                hint="the server may be wedged or busy loading a big model; try again, raise "
                "--timeout where the command has it, or restart Ollama",
            ) from None
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.display_url, f"connection lost: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise self._error(response, path, model)
        return response

    def _error(self, response: httpx.Response, path: str, model: str | None) -> ResidentError:
        """An error status as Ollama words it, or NotOllama when something else answered.

        Ollama's errors are ``{"error": "..."}`` (contract §7); its only other error
        bodies are gin's plain ``404 page not found`` for a path it lacks and an empty
        403 from its Host check. Anything else (nginx's 502 page, a dev server's text)
        did not come from Ollama.
        """
        status = response.status_code
        message = _ollama_error(response)
        if message is None:
            text = response.text.strip()
            if status == 404 and text == "404 page not found":
                return ServerTooOld(
                    status,
                    f"Ollama at {self.display_url} has no {path} endpoint ({text})",
                    hint="this needs Ollama 0.1.38 or newer (0.3.11+ for unloading); upgrade it",
                )
            if status == 403 and not text:
                return ApiError(
                    status,
                    f"Ollama at {self.display_url} refused the request (403)",
                    hint="a proxy or tunnel may be rewriting the Host header; Ollama on a "
                    "loopback address only accepts local host names",
                )
            return self._not_ollama(response, describe_reply(response))
        if status == 404 and model is not None and "not found" in message:
            return ModelNotFound(model, redact(message), status)
        if status == 400:
            return BadRequest(status, redact(message) or "bad request")
        return ApiError(status, redact(message) or f"HTTP {status}")

    def _not_ollama(self, response: httpx.Response, what: str) -> NotOllama:
        request = response.request
        prefix = self.host.path
        path = request.url.path
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
        return NotOllama(self.display_url, f"{request.method} {path}", response.status_code, what)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The reply as a JSON object; NotOllama for anything that is not one."""
        try:
            data = response.json()
        except ValueError:
            raise self._not_ollama(response, describe_reply(response)) from None
        if not isinstance(data, dict):
            raise self._not_ollama(response, f"JSON that is not Ollama's: {_kind(data)}")
        if isinstance(data.get("error"), str):
            raise ApiError(response.status_code, redact(data["error"]))
        return data

    def _shaped(self, response: httpx.Response, parse: Callable[[dict[str, Any]], T]) -> T:
        """``parse(json)``, with a ShapeError (wrong-shaped JSON) turned into NotOllama."""
        data = self._json(response)
        try:
            return parse(data)
        except ShapeError as exc:
            raise self._not_ollama(response, f"JSON that is not Ollama's: {exc}") from None

    # -- calls ------------------------------------------------------------------------------

    def heartbeat(self, *, timeout: float | None = None) -> None:
        """``HEAD /``: returns when the server answers, raises otherwise."""
        if timeout is None:
            self._request("HEAD", "/")
        else:
            self._request("HEAD", "/", read_timeout=timeout)

    def version(self) -> str:
        return self.version_and_date()[0]

    def version_and_date(self) -> tuple[str, str | None]:
        """``GET /api/version``: the version and the reply's ``Date`` header (None if absent)."""
        response = self._request("GET", "/api/version")
        return self._shaped(response, version_from_api), response.headers.get("date")

    def ps(self) -> PsSnapshot:
        response = self._request("GET", "/api/ps")
        now = datetime.now(timezone.utc)
        snapshot = self._shaped(response, lambda data: PsSnapshot.from_api(data, now))
        if self.aliases:
            snapshot = PsSnapshot(snapshot.models, snapshot.taken_at, dict(self.aliases))
        return snapshot

    def tags(self) -> list[dict[str, Any]]:
        """``GET /api/tags``'s entries, each an object with a string ``name``."""
        return self._shaped(self._request("GET", "/api/tags"), tags_from_api)

    def show(self, model: str) -> ModelInfo:
        response = self._request("POST", "/api/show", body={"model": model}, model=model)
        return self._shaped(response, lambda data: ModelInfo.from_api(model, data))

    def modelfile(self, model: str) -> str:
        """``POST /api/show``'s ``modelfile`` text; its ``FROM`` line holds the path of the
        model's blob (``.../blobs/sha256-<hex>``), the only name INFO server logs use."""
        data = self._json(self._request("POST", "/api/show", body={"model": model}, model=model))
        return str(data.get("modelfile") or "")

    def load(
        self,
        model: str,
        *,
        endpoint: LoadEndpoint = "generate",
        keep_alive: KeepAlive | None = None,
        num_ctx: int | None = None,
    ) -> dict[str, Any]:
        """Load ``model`` with an empty request and return Ollama's reply.

        Blocks until the model is in memory, with no read timeout: closing the
        connection early makes Ollama abort the load. ``keep_alive=None`` omits
        the field, so a loaded model keeps its current window (contract §4.3).
        """
        body: dict[str, Any] = {"model": model}
        if endpoint == "generate":
            body.update(prompt="", stream=False)
        elif endpoint == "chat":
            body.update(messages=[], stream=False)
        elif endpoint == "embeddings":  # servers before 0.2.6: the legacy endpoint only
            body["prompt"] = ""
        else:
            body["input"] = []
        if keep_alive is not None:
            body["keep_alive"] = keep_alive.to_wire()
        if num_ctx is not None:
            body["options"] = {"num_ctx": num_ctx}
        response = self._request(
            "POST", f"/api/{endpoint}", body=body, read_timeout=None, model=model
        )
        return self._json(response)

    def unload(self, model: str) -> dict[str, Any]:
        """Ask Ollama to unload ``model`` (``keep_alive: 0``, empty prompt).

        Returns at once; the runner goes when its in-flight requests end. Works
        for embedding models too, since the shortcut runs before the
        capability check (contract §2.3).
        """
        body = {"model": model, "prompt": "", "keep_alive": 0, "stream": False}
        return self._json(self._request("POST", "/api/generate", body=body, model=model))


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # httpx wraps OS errors as "[Errno 111] Connection refused"; keep the words.
    if "] " in text and text.startswith("[Errno"):
        text = text.split("] ", 1)[1]
    return redact(text).lower()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "an object"


def _ollama_error(response: httpx.Response) -> str | None:
    """The ``error`` text of an Ollama error body, or None when the body is not one."""
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return None


def describe_reply(response: httpx.Response) -> str:
    """What came back, in words, for a body that is not Ollama's JSON.

    "an empty reply", "an HTML page titled "502 Bad Gateway", probably from a
    proxy", "JSON cut short or malformed", "plain text: "..."" or, for JSON of
    another shape, "JSON that is not Ollama's".
    """
    body = response.content
    text = body[:4096].decode("utf-8", "replace").strip()
    if not text:
        return "an empty reply"
    ctype = response.headers.get("content-type", "").lower()
    low = text.lower()
    if "html" in ctype or low.startswith(("<!doctype html", "<html", "<head", "<body", "<?xml")):
        start, end = low.find("<title>"), low.find("</title>")
        title = " ".join(text[start + 7 : end].split()) if 0 <= start < end else ""
        named = f' titled "{redact(title[:80])}"' if title else ""
        return f"an HTML page{named}, probably from a proxy"
    try:
        parsed = response.json()
    except ValueError:
        if "json" in ctype or text[:1] in "{[":
            return "JSON cut short or malformed"
        line = text.splitlines()[0]
        shown = line[:80] + ("..." if len(line) > 80 else "")
        return f'plain text: "{redact(shown)}"'
    return f"JSON that is not Ollama's: {_kind(parsed)}"


def model_names(
    host: Host, kind: Literal["installed", "loaded"], timeout: float
) -> list[str] | None:
    """Names from ``/api/tags`` (installed) or ``/api/ps`` (loaded); None on any failure.

    For shell completion, where every Tab press starts the program: one GET over the
    standard library's ``http.client`` (already loaded by Python's own modules, while
    httpx costs about 100 ms to import), ``timeout`` seconds to connect and again to
    answer, and never an exception: a Tab press shows no error.
    """
    import base64
    import http.client
    import json

    path = host.path + ("/api/ps" if kind == "loaded" else "/api/tags")
    headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
    if host.has_credentials:
        token = f"{host.username or ''}:{host.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    conn: http.client.HTTPConnection
    if host.scheme == "https":
        conn = http.client.HTTPSConnection(host.host, host.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host.host, host.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            return None
        data = json.loads(response.read(8 * 1024 * 1024))
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    names = (m.get("name") or m.get("model") for m in models if isinstance(m, dict))
    return [n for n in names if isinstance(n, str) and n]
