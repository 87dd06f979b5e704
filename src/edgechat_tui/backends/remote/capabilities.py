"""What an agent endpoint offers, as its health answer says (docs/protocol.md, "Capabilities")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgechat_tui.http.text import shown

_NONE: frozenset[str] = frozenset()
#: The modes where the server, not the client, names the user (docs/protocol.md, "Identity").
IDENTITY_MODES = frozenset({"user-tokens", "access"})


def _auth_mode(data: dict[str, Any]) -> str:
    """``authMode`` when it is a string; otherwise (protocol 1, the seed) ``auth: true`` is a token.

    An unknown mode is kept as it was named (shortened): it needs a credential, as ``auth`` says.
    """
    mode = data.get("authMode")
    if isinstance(mode, str) and mode.strip():
        return shown(mode.strip(), 40)
    return "token" if data.get("auth") is True else "none"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the health answer said. The default (nothing known) is the seed's: no extensions."""

    service: str | None = None
    protocol: int | None = None
    names: frozenset[str] = field(default_factory=frozenset)
    auth: bool = False
    model: str | None = None
    #: The identity mode (protocol 2's ``authMode``; for older servers ``auth: true`` is "token").
    auth_mode: str = "none"

    @property
    def verifies_user(self) -> bool:
        """True when the server takes the user id from the credential, not from the request."""
        return self.auth_mode in IDENTITY_MODES

    @property
    def asks_whoami(self) -> bool:
        """True when the client should ask ``whoami`` who the server takes it for."""
        return self.verifies_user or "whoami" in self.names

    @classmethod
    def from_health(cls, data: dict[str, Any]) -> Capabilities:
        """Read a health answer leniently: unknown names are kept but unused, wrong types ignored."""
        names = data.get("capabilities")
        protocol = data.get("protocol")
        service, model = data.get("service"), data.get("model")
        return cls(
            service=shown(service, 80) if isinstance(service, str) and service.strip() else None,
            protocol=protocol if isinstance(protocol, int) and not isinstance(protocol, bool) else None,
            names=frozenset(n for n in names if isinstance(n, str)) if isinstance(names, list) else _NONE,
            auth=data.get("auth") is True,
            model=shown(model, 120) if isinstance(model, str) and model.strip() else None,
            auth_mode=_auth_mode(data),
        )

    def describe(self) -> str:
        """A short status for the header: who answered and what it offers."""
        who = self.service or "an agent"
        if self.protocol is None and not self.names:
            return f"reachable: {who} (seed protocol)"
        offered = ", ".join(sorted(shown(n, 40) for n in self.names)) or "no extensions"
        return f"reachable: {who}, protocol {self.protocol if self.protocol is not None else '?'} ({offered})"


__all__ = ["IDENTITY_MODES", "Capabilities"]
