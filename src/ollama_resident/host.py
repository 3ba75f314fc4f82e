"""Which Ollama server to talk to: ``OLLAMA_HOST`` read the way Ollama's own CLI reads it.

The rules are those of ``envconfig.Host()`` (contract §5), including the surprising
ones (``http://host`` means port 80, not 11434), so that this tool and ``ollama ps``
always reach the same server. One deliberate difference: an unspecified or empty host
(``0.0.0.0``, ``::``, ``:1234``) is a *bind* address, and we connect to loopback
instead, as Ollama's ``ConnectableHost()`` does (dialling 0.0.0.0 fails on Windows).

Credentials in the URL are kept for requests but never shown: print
:attr:`Host.display`, and pass any error text through :func:`redact`.

Pure: no I/O; the caller reads the environment.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "Host",
    "HostError",
    "check_host",
    "host_problem",
    "parse_host",
    "redact",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434

_HTTP_PORT = 80
_HTTPS_PORT = 443
_PORT = r"([+-]?)([0-9]+)"  # patterns compile on first use: an import compiles nothing


@dataclass(frozen=True)
class Host:
    """A parsed server address.

    ``host`` has no brackets (``::1``); ``path`` is '' or '/prefix' without a trailing
    slash; ``username``/``password`` are kept as written (still percent-encoded) and
    left out of ``repr()`` so that they cannot leak through logging or tracebacks.
    """

    scheme: str
    host: str
    port: int
    path: str = ""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def _hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def has_credentials(self) -> bool:
        return self.username is not None or self.password is not None

    @property
    def url(self) -> str:
        """Base URL for requests, credentials included: 'http://127.0.0.1:11434'.

        Never print this; use :attr:`display`.
        """
        userinfo = ""
        if self.has_credentials:
            userinfo = self.username or ""
            if self.password is not None:
                userinfo += ":" + self.password
            userinfo += "@"
        return f"{self.scheme}://{userinfo}{self._hostport}{self.path}"

    @property
    def display(self) -> str:
        """The URL with any credentials replaced by '***': the only form ever printed."""
        userinfo = "***@" if self.has_credentials else ""
        return f"{self.scheme}://{userinfo}{self._hostport}{self.path}"

    def __str__(self) -> str:
        return self.display


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``; None where Go returns an error.

    Reproduced rule for rule because Ollama's fallback on error (treat the whole
    value as a host, default port) decides which inputs keep their port.
    """
    i = hostport.rfind(":")
    if i < 0:
        return None  # missing port
    j = k = 0
    if hostport[0] == "[":
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return None  # missing ']', missing port, or too many colons
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return None  # too many colons
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return None
    return host, hostport[i + 1 :]


def _parse_port(text: str, default: int) -> int:
    """Go's ``strconv.ParseInt(port, 10, 32)`` limited to 0..65535, else the scheme default."""
    m = re.fullmatch(_PORT, text)
    if m is None:
        return default
    digits = m.group(2).lstrip("0") or "0"
    if len(digits) > 5:
        return default
    n = int(digits)
    if m.group(1) == "-" and n != 0:
        return default
    return n if n <= 65535 else default


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _connectable(host: str) -> str:
    """Loopback for an empty or unspecified host (0.0.0.0 -> 127.0.0.1, :: -> ::1)."""
    if host == "":
        return DEFAULT_HOST
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # Go's To4() sees ::ffff:0.0.0.0 as IPv4.
        return DEFAULT_HOST if ip.ipv4_mapped.is_unspecified else host
    if ip.is_unspecified:
        return DEFAULT_HOST if ip.version == 4 else "::1"
    return host


class HostError(ValueError):
    """A host value this tool cannot use; ``str()`` says why in words."""


def parse_host(value: str | None) -> Host:
    """Parse an ``OLLAMA_HOST`` value (or ``--host``) exactly like ``envconfig.Host()``.

    - surrounding whitespace and quotes are stripped; empty or None ->
      http://127.0.0.1:11434;
    - no scheme -> http with port 11434 (``1.2.3.4``, ``example.com``, ``[::1]``,
      ``::1``, ``[::1]:8080``); the bare value ``ollama.com`` -> https://ollama.com:443;
    - ``http://host`` -> port 80, ``https://host`` -> 443; any other scheme keeps 11434;
    - an explicit port is kept; an invalid one (66000, -1, abc) -> the scheme's default;
    - everything after the first '/' is a path prefix, trailing slashes removed;
    - ``user:pass@`` is parsed into ``username``/``password`` (Ollama has no such step).

    Unlike Ollama, an empty or unspecified host connects to loopback.
    """
    s = (value or "").strip().strip("\"'").strip()
    default_port = DEFAULT_PORT
    scheme, sep, hostport = s.partition("://")
    if not sep:
        scheme, hostport = "http", s
        if s == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme == "http":
        default_port = _HTTP_PORT
    elif scheme == "https":
        default_port = _HTTPS_PORT

    hostport, _, path = hostport.partition("/")
    path = path.rstrip("/")

    username: str | None = None
    password: str | None = None
    userinfo, at, rest = hostport.rpartition("@")
    if at:
        hostport = rest
        if userinfo:
            username, colon, pw = userinfo.partition(":")
            password = pw if colon else None

    split = _split_host_port(hostport)
    if split is not None:
        host, port_text = split
        port = _parse_port(port_text, default_port)
    else:
        # Ollama's fallback: an IP (brackets trimmed) or the whole value is the host.
        # Go also canonicalises the IP here (0001::1 -> 1::1); the spelling is kept as
        # written instead, which connects the same and matches ollama-python.
        trimmed = hostport.strip("[]")
        host = trimmed if _is_ip(trimmed) else hostport
        port = default_port

    return Host(
        scheme=scheme,
        host=_connectable(host),
        port=port,
        path="/" + path if path else "",
        username=username,
        password=password,
    )


def _hostname_char(c: str) -> bool:
    """Letters (any script, for internationalised names), digits, '-', '_' and '.'."""
    return c.isalnum() or c in "._-"


def host_problem(value: str | None) -> str | None:
    """Why this tool cannot use ``value`` as a server address, or None when it can.

    Ollama reads some values it cannot use by falling back to a default: an
    invalid port (``127.0.0.1:99999``, ``:-1``, ``:abc``) becomes the scheme's
    default port with only a warning in the server's log (``envconfig.Host()``,
    "invalid port, using default"), so a command would quietly reach another
    server. Those, and values no connection can be made with, are refused:

    - a port that is not a number from 1 to 65535 (an empty one, ``host:``, is the
      default, as in Ollama);
    - a scheme other than http or https (``tcp://``);
    - an address Go's ``net.SplitHostPort`` rejects and that is not an IP address
      either (``http://[::1:11601``, ``a:b:c``);
    - a host name with characters no host name has (spaces, ``<``, ``%``, controls).

    Every value Ollama's ``TestHost`` table reads as written stays valid.

    >>> host_problem("127.0.0.1:99999")
    'port "99999" is not a number from 1 to 65535'
    >>> host_problem("http://[::1:11601") is None, host_problem("[::1]:11601") is None
    (False, True)
    """
    s = (value or "").strip().strip("\"'").strip()
    scheme, sep, hostport = s.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        return f'scheme "{scheme}" is not http or https'
    if not sep:
        hostport = s
    hostport = hostport.partition("/")[0]
    hostport = hostport.rpartition("@")[2]
    split = _split_host_port(hostport)
    if split is not None:
        host, port_text = split
        if port_text:
            port = _parse_port(port_text, -1)
            if port < 1:
                return f'port "{port_text}" is not a number from 1 to 65535'
    else:
        trimmed = hostport.strip("[]")
        if _is_ip(trimmed):
            return None
        if "[" in hostport or "]" in hostport:
            return f'"{hostport}" is not an address: its brackets do not enclose an IPv6 address'
        if ":" in hostport:
            return f'"{hostport}" is not an address: too many colons for host:port'
        host = hostport
    if host and not _is_ip(host) and not all(_hostname_char(c) for c in host):
        bad = next(c for c in host if not _hostname_char(c))
        return f"host name {host!r} contains {bad!r}, which no host name has"
    return None


def check_host(value: str | None) -> Host:
    """:func:`parse_host` for a value the tool will connect to; HostError if it cannot.

    See :func:`host_problem` for what is refused.
    """
    problem = host_problem(value)
    if problem is not None:
        raise HostError(problem)
    return parse_host(value)


# scheme://userinfo@ -- userinfo ends at the last '@' before '/', '?', '#' or a space.
_URL_USERINFO = r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]+@"
# A scheme-less ``user:secret@host`` (OLLAMA_HOST allows it) at the start of a word.
_BARE_USERINFO = r"""(?:^|(?<=[\s'"(<\[=,]))[^\s/?#@'":(<\[=,]+:[^\s/?#'"]*@(?=[^\s@])"""


def redact(text: str) -> str:
    """Replace ``user:pass@`` (or ``token@``) in any URL inside ``text`` with ``***@``.

    For error messages from httpx or the server, which may echo the base URL. Errs on
    the side of hiding too much.
    """
    text = re.sub(_URL_USERINFO, r"\g<scheme>***@", text)
    return re.sub(_BARE_USERINFO, "***@", text)
