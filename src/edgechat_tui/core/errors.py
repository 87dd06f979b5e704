"""Every error a user can meet, each with a one-line message and a hint saying what to do.

The CLI prints ``str(error)`` on stderr and exits with ``error.exit_code``; the TUI shows the same
``message`` and ``hint`` in the chat pane. Nothing here ever carries a token: messages are built from
what the user or the server said, never from credentials.
"""

from __future__ import annotations


class EdgechatError(Exception):
    """Base of every error edgechat reports to a user.

    ``message`` says what went wrong, ``hint`` (optional) what to do about it. ``exit_code`` is what
    the command-line exits with: 2 for a usage error, 1 for anything at run time.
    """

    exit_code = 1
    #: True when trying the same request again later may succeed (the agent retries these itself).
    retryable = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- The user's own input -------------------------------------------------------------------------


class UsageError(EdgechatError):
    """A flag, argument or value the user gave cannot be used. Raised before any file is touched."""

    exit_code = 2


class InvalidUserId(UsageError):
    """A user id breaks the rules (1-64 of ``A-Z a-z 0-9 . _ -``, not starting with a dot)."""


class ConfigError(UsageError):
    """The configuration is wrong: a malformed file, an unknown key, a value of the wrong type."""


class MissingCredentials(ConfigError):
    """Local mode needs an account id and an API token and one of them is not set."""


class MessageTooLong(UsageError):
    """A single message is too large to fit the model's context window at all. Nothing was sent."""

    exit_code = 1


class EmptyMessage(UsageError):
    """The message is empty or only white space. Nothing was sent."""


# --- The disk -------------------------------------------------------------------------------------


class StorageError(EdgechatError):
    """History or config could not be read or written (permissions, disk full, not a directory)."""


class NewerSchemaError(StorageError):
    """A history file was written by a newer edgechat. It is left untouched."""


class NoSuchProfile(StorageError):
    """A command named a profile that has no history here, current or archived (a typo, often)."""


# --- The conversation library ---------------------------------------------------------------------


class ConversationNotFound(EdgechatError):
    """An id names no conversation of this profile (a typo, or one purged from the trash)."""


class MessageNotFound(EdgechatError):
    """A message id names no message of this conversation."""


class ConversationConflict(EdgechatError):
    """The action does not apply to the conversation as it is: archived (restore it first), nothing to
    regenerate or edit yet, or no stopped or truncated reply to continue. Nothing was sent or stored."""


class HistoryChanged(EdgechatError):
    """The stored conversation holds messages the caller has not shown (another process added them):
    the turn was not sent and nothing was stored. Show the history again, then send."""


# --- The model or the agent service ---------------------------------------------------------------


class BackendError(EdgechatError):
    """The model service or the remote agent refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        code: int | str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class AuthError(BackendError):
    """401/403: the token is missing, wrong, expired, or lacks a permission."""


class AccountNotFound(BackendError):
    """The account id does not name an account the token can reach (Cloudflare code 7003)."""


class ModelNotFound(BackendError):
    """The model id is unknown (Cloudflare codes 5007, 3042)."""


class ContextTooLong(BackendError):
    """The prompt plus ``max_tokens`` exceeded the model's context window (5021, 413)."""


class QuotaExceeded(BackendError):
    """The daily allocation is used up (3036, 4006). Retrying today does not help."""


class BadRequest(BackendError):
    """The service rejected the request as malformed (400 and codes such as 5006)."""


class NotFound(BackendError):
    """The URL does not lead to an agent endpoint (404)."""


class RateLimited(BackendError):
    """429 or capacity exceeded (3040): worth retrying after ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(BackendError):
    """A 5xx answer: the service failed. Worth retrying."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ConnectionFailed(BackendError):
    """No connection could be made (refused, DNS failure, TLS failure).

    ``reached_server`` is False when the request certainly did not reach the server, so sending it
    again cannot duplicate a message.
    """

    retryable = True

    def __init__(self, message: str, *, reached_server: bool = False, **kw) -> None:
        super().__init__(message, **kw)
        self.reached_server = reached_server


class RequestTimeout(BackendError):
    """The service did not answer (or stopped sending) within the timeout.

    ``may_have_answered`` is True when the request reached the server: it may still have been processed.
    """

    retryable = True

    def __init__(self, message: str, *, may_have_answered: bool = True, **kw) -> None:
        super().__init__(message, **kw)
        self.may_have_answered = may_have_answered


class ProtocolError(BackendError):
    """The answer could not be understood: not JSON, malformed SSE, a stream cut before its end."""


class NotSupported(BackendError):
    """The agent does not offer this operation (for example reset on the seed's Worker)."""
