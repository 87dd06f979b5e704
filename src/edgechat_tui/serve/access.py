"""Who may use the served chat: the access key, the Host header and the websocket's Origin.

textual-serve has no authentication, and every tab runs the chat with this machine's Cloudflare
token and histories, so every request goes through :meth:`AccessPolicy.check` before anything
else happens (no page, no static file, no websocket, no app process):

- With an access key (``--allow-remote``), a request must present it: as ``?key=`` in the URL
  (the page then sets a cookie and redirects to ``/`` so the key leaves the address bar), or in
  that cookie (``HttpOnly``, ``SameSite=Strict``), which is what the page's own requests and its
  websocket carry. Keys are compared in constant time.
- Without a key (loopback only), the Host header must name a loopback address: a web page
  elsewhere cannot reach the server through a DNS name rebound to 127.0.0.1.
- A websocket whose Origin header is not this server's own is refused, so no other web site open
  in the browser can drive the chat (cross-site websocket hijacking).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from edgechat_tui.serve.options import is_loopback_host


@dataclass(frozen=True)
class Verdict:
    """What to do with a request: serve it, refuse it (403 with ``reason``), or set the cookie."""

    allowed: bool
    reason: str = ""
    #: True when the key came in the URL: answer with the cookie and a redirect to drop it from the URL.
    key_from_url: bool = False


class AccessPolicy:
    def __init__(self, key: str | None, *, loopback_only: bool, port: int) -> None:
        self._key = key.encode("ascii") if key is not None else None
        self.loopback_only = loopback_only
        self.cookie_name = cookie_name(port)

    @property
    def needs_key(self) -> bool:
        return self._key is not None

    def key_matches(self, presented: str | None) -> bool:
        """Constant-time comparison of a presented key with the server's (False when none is given)."""
        if self._key is None:
            return True
        if not presented:
            return False
        try:
            candidate = presented.encode("ascii")
        except UnicodeEncodeError:
            candidate = b""
        # Compared even when the lengths differ, so the time taken says nothing about the key.
        return hmac.compare_digest(candidate, self._key)

    def check(self, *, host: str | None, query_key: str | None, cookie_key: str | None,
              origin: str | None, websocket: bool) -> Verdict:
        if self.loopback_only and not _host_is_loopback(host):
            return Verdict(False, "the Host header does not name a loopback address")
        if websocket and origin is not None and not same_origin(origin, host):
            return Verdict(False, "the websocket's Origin is not this server")
        if self._key is None:
            return Verdict(True)
        if query_key is not None:
            if self.key_matches(query_key):
                return Verdict(True, key_from_url=True)
            return Verdict(False, "wrong access key")
        if self.key_matches(cookie_key):
            return Verdict(True)
        return Verdict(False, "no access key" if not cookie_key else "wrong access key")


def cookie_name(port: int) -> str:
    """The cookie carrying the key, one per port (a browser shares cookies across a host's ports)."""
    return f"edgechat_serve_{port}"


def _host_is_loopback(host: str | None) -> bool:
    if not host:
        return False
    name = urlsplit(f"//{host}").hostname
    return bool(name) and is_loopback_host(name)


def same_origin(origin: str, host: str | None) -> bool:
    """True when ``origin`` (a browser's Origin header) is http(s)://``host``, host and port alike."""
    if not host:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc.lower() == host.strip().lower()
