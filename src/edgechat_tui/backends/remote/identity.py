"""Who is asking: the credentials a remote agent's requests carry, and what ``whoami`` answered.

docs/protocol.md, "Identity". A request may carry, as configured:

- ``remote_token``: ``Authorization: Bearer <token>`` (a shared token, or a per-user ``ec1.`` token);
- an Access service token: ``CF-Access-Client-Id`` and ``CF-Access-Client-Secret``;
- a user's Access token, printed by ``access_token_command`` (``cloudflared access token -app=URL``),
  sent as ``cf-access-token``. The command is split into words with :mod:`shlex` and run without a
  shell, within :data:`COMMAND_TIMEOUT`; its output is a secret. The token is kept until the ``exp``
  of its JWT payload (read, not verified: the server verifies it) less a margin, and fetched again
  when it has expired or the server refused it (401).

Every secret lives in a :class:`~edgechat_tui.core.secret.Secret` and is named to the redactor, so
no message, repr or log line shows one; the command's output is never shown, only its exit status
and the last line of what it wrote on stderr (masked).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgechat_tui.backends.remote.errors import ACCESS_HINT
from edgechat_tui.core.errors import AuthError, UsageError
from edgechat_tui.core.secret import Secret
from edgechat_tui.http.text import Redactor, shown

#: How long access_token_command may run.
COMMAND_TIMEOUT = 60.0
#: A token is fetched again this long before its ``exp``.
EXPIRY_MARGIN = 30.0
#: The most of the command's output read (a JWT is a few KiB).
MAX_COMMAND_OUTPUT = 64 * 1024



def _header_safe(value: str) -> bool:
    return bool(value) and all("!" <= ch <= "~" for ch in value)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` (seconds since the epoch) of a JWT's payload, read without verifying; None if none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    exp = data.get("exp") if isinstance(data, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and exp == exp:
        return float(exp)
    return None


@dataclass(frozen=True, slots=True)
class WhoAmI:
    """What ``GET /api/whoami`` answered: the verified user (None where the client names the user)."""

    user_id: str | None
    auth: str | None = None
    expires_at: str | None = None


class Credentials:
    """The credentials of one agent endpoint, and the headers that carry them.

    ``on_secret`` is told each secret as it becomes known (the command's token, when fetched), so the
    agent's redactor masks it from then on.
    """

    def __init__(self, *, token: str | Secret | None = None, access_client_id: str | None = None,
                 access_client_secret: str | Secret | None = None, access_token_command: str | None = None,
                 on_secret: Callable[[str], None] | None = None, command_timeout: float = COMMAND_TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        token = token.reveal() if isinstance(token, Secret) else token
        if isinstance(access_client_secret, Secret):
            access_client_secret = access_client_secret.reveal()
        if token is not None and not _header_safe(token):
            # Not echoed, not even in part: it is a secret.
            raise UsageError("remote_token is empty or holds characters an HTTP header cannot carry.",
                             hint="set it again, without spaces or line breaks")
        if (access_client_id is None) != (access_client_secret is None):
            missing = "access_client_secret" if access_client_secret is None else "access_client_id"
            raise UsageError(f"An Access service token needs both access_client_id and access_client_secret: "
                             f"{missing} is not set.", hint=f"edgechat config set {missing}")
        if access_client_id is not None and not _header_safe(access_client_id):
            raise UsageError("access_client_id holds characters an HTTP header cannot carry.")
        if access_client_secret is not None and not _header_safe(access_client_secret):
            raise UsageError("access_client_secret is empty or holds characters an HTTP header cannot carry.",
                             hint="set it again, without spaces or line breaks")
        self._command: list[str] | None = None
        if access_token_command is not None:
            try:
                self._command = shlex.split(access_token_command)
            except ValueError:
                self._command = []
            if not self._command:
                raise UsageError("access_token_command cannot be split into a program and its arguments.")
        self.__token = Secret(token) if token else None
        self.__client_id = access_client_id
        self.__client_secret = Secret(access_client_secret) if access_client_secret else None
        self.__access_token: Secret | None = None
        self._access_expiry: float | None = None
        self._on_secret = on_secret or (lambda _secret: None)
        self._command_timeout = command_timeout
        self._clock = clock
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # how many times the command ran (tests)

    def __repr__(self) -> str:
        kinds = [name for name, present in (("token", self.__token), ("service token", self.__client_secret),
                                             ("access command", self._command)) if present]
        return f"Credentials({', '.join(kinds) or 'none'})"

    # --- what is configured ---------------------------------------------------------------------

    @property
    def any(self) -> bool:
        return bool(self.__token or self.__client_secret or self._command)

    @property
    def has_token(self) -> bool:
        return self.__token is not None

    @property
    def access(self) -> bool:
        """A Cloudflare Access credential is configured (a service token or the command)."""
        return bool(self.__client_secret or self._command)

    @property
    def refreshable(self) -> bool:
        """A refused credential may be fetched afresh (the command's token)."""
        return bool(self._command)

    def secrets(self) -> list[str]:
        """Every secret known now, for the redactor."""
        return [s.reveal() for s in (self.__token, self.__client_secret, self.__access_token) if s]

    def redactor(self) -> Redactor:
        return Redactor(self.secrets())

    # --- headers ------------------------------------------------------------------------------

    async def headers(self) -> dict[str, str]:
        """The headers carrying every configured credential; runs the command when its token is due."""
        headers: dict[str, str] = {}
        if self.__token:
            headers["Authorization"] = f"Bearer {self.__token.reveal()}"
        if self.__client_secret and self.__client_id:
            headers["CF-Access-Client-Id"] = self.__client_id
            headers["CF-Access-Client-Secret"] = self.__client_secret.reveal()
        if self._command:
            headers["cf-access-token"] = (await self._access_token()).reveal()
        return headers

    def forget_access_token(self) -> None:
        """The server refused the command's token: the next request runs the command again."""
        self.__access_token = None
        self._access_expiry = None

    def _fresh(self) -> bool:
        if self.__access_token is None:
            return False
        return self._access_expiry is None or self._clock() < self._access_expiry - EXPIRY_MARGIN

    async def _access_token(self) -> Secret:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # two requests at once run the command once
            if not self._fresh():
                token = await self._run_command()
                self.__access_token = Secret(token)
                self._access_expiry = jwt_expiry(token)
                self._on_secret(token)
            assert self.__access_token is not None
            return self.__access_token

    async def _run_command(self) -> str:
        assert self._command
        program = shown(os.path.basename(self._command[0]), 60)
        self.fetches += 1
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise UsageError(f"access_token_command could not start {program!r}: {exc.strerror or exc}.",
                             hint="check access_token_command (it is run without a shell)") from None
        try:
            out, err = await asyncio.wait_for(process.communicate(), self._command_timeout)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(BaseException):
                await process.wait()
            raise AuthError(f"access_token_command ({program}) did not finish within "
                            f"{self._command_timeout:g} s.", hint=ACCESS_HINT) from None
        text = out[:MAX_COMMAND_OUTPUT].decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        token = lines[-1] if lines else ""
        said = self._stderr_line(err, [token, *self.secrets()])
        if process.returncode != 0:
            raise AuthError(f"access_token_command ({program}) failed with exit status {process.returncode}"
                            + (f": {said}." if said else "."), hint="sign in to Access again, or check "
                            "access_token_command")
        if not _header_safe(token):
            raise AuthError(f"access_token_command ({program}) printed no token"
                            + (f" ({said})." if said else "."), hint="check access_token_command")
        return token

    @staticmethod
    def _stderr_line(err: bytes, secrets: list[str]) -> str:
        lines = [line.strip() for line in err[:MAX_COMMAND_OUTPUT].decode("utf-8", "replace").splitlines()
                 if line.strip()]
        return shown(lines[-1], 200, Redactor(secrets)) if lines else ""


def parse_whoami(data: dict | None) -> WhoAmI | None:
    """``{"userId", "auth", "expiresAt"?}`` read leniently; None when it is not a whoami answer."""
    if data is None or "userId" not in data:
        return None
    user = data.get("userId")
    auth, expires = data.get("auth"), data.get("expiresAt")
    return WhoAmI(user_id=user if isinstance(user, str) and user else None,
                  auth=shown(auth, 40) if isinstance(auth, str) else None,
                  expires_at=shown(expires, 40) if isinstance(expires, str) else None)


__all__ = ["COMMAND_TIMEOUT", "Credentials", "WhoAmI", "jwt_expiry", "parse_whoami"]
