"""An agent endpoint's URL: checked once, with its path prefix, and whether it stays on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from edgechat_tui.core.errors import UsageError
from edgechat_tui.core.net import is_loopback
from edgechat_tui.http.text import shown


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A checked agent URL: ``base`` without a trailing slash, ``shown`` for the header (no scheme)."""

    base: str
    scheme: str
    shown: str
    loopback: bool

    @property
    def netloc(self) -> str:
        """host[:port]: what transport errors name."""
        return self.shown.split("/", 1)[0]

    def url(self, path: str) -> str:
        """The URL of ``path`` ("/", "/api/chat") under the base, keeping the path prefix."""
        return self.base + path


def parse_endpoint(url: str) -> Endpoint:
    """Check ``url`` as an agent endpoint's base URL; raise UsageError saying what is wrong.

    Only http and https; a path prefix is kept (``https://host/team`` -> ``https://host/team/api/chat``);
    no user name or password in it (they would travel in clear and show in messages: use remote_token).
    """
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise UsageError("The remote URL is empty.", hint="give the agent's URL, such as https://host")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        scheme_shown = f"'{scheme}:'" if scheme else "none"
        raise UsageError(
            f"The remote URL must start with http:// or https:// (its scheme is {scheme_shown}).",
            hint="give the agent's URL, such as https://host or https://host/prefix",
        )
    if "@" in parts.netloc:
        # Not echoed: the part before '@' may be a password.
        raise UsageError("The remote URL must not carry a user name or password.",
                         hint="give the token with remote_token instead")
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise UsageError(f"The remote URL has an invalid port: {shown(parts.netloc, 300)}.") from None
    if not host:
        raise UsageError(f"The remote URL has no host: {shown(text, 300)}.",
                         hint="give the agent's URL, such as https://host")
    if parts.query or parts.fragment:
        raise UsageError("The remote URL must not have a query (?...) or a fragment (#...).",
                         hint="give the agent's base URL, such as https://host/prefix")
    path = parts.path.rstrip("/")
    netloc = parts.netloc.lower()
    return Endpoint(
        base=f"{scheme}://{netloc}{path}",
        scheme=scheme,
        shown=f"{netloc}{path}",
        loopback=is_loopback(host),
    )


__all__ = ["Endpoint", "is_loopback", "parse_endpoint"]
