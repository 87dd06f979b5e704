"""Writing a conversation to a file: Markdown to read, JSON to keep or process.

Pure Python, no Textual: the chat screen's ``/export`` calls :func:`export_conversation` in a
thread, and ``edgechat history`` prints :func:`to_markdown`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from edgechat_tui.core.errors import StorageError, UsageError
from edgechat_tui.core.messages import Message
from edgechat_tui.core.sanitize import sanitize


def default_export_path(user: str, when: datetime | None = None, directory: Path | None = None) -> Path:
    """``edgechat-<user>-<YYYYmmdd-HHMMSS>.md`` in the current directory: a name that rarely collides."""
    when = when or datetime.now(UTC)
    return (directory or Path.cwd()) / f"edgechat-{user}-{when:%Y%m%d-%H%M%S}.md"


def _fence_safe(text: str) -> str:
    # Markdown export is for reading in a terminal or an editor: no control characters in it.
    return sanitize(text)


def to_markdown(user: str, messages: Sequence[Message], *, exported: str, model: str | None) -> str:
    """The conversation as a Markdown document, one section per message."""
    lines = [f"# edgechat conversation: {user}", ""]
    details = [f"exported {exported}", f"{len(messages)} messages"]
    if model:
        details.append(f"model {model}")
    lines += [" · ".join(details), ""]
    for message in messages:
        if message.role == "user":
            title = user
        elif message.role == "assistant":
            title = "assistant" + (f" ({message.model})" if message.model else "")
        else:
            title = "system"
        if message.time:
            title += f" · {message.time}"
        if message.stopped:
            title += " · stopped"
        lines += [f"## {title}", "", _fence_safe(message.content).rstrip("\n"), ""]
    return "\n".join(lines)


def to_json(user: str, messages: Sequence[Message], *, exported: str, model: str | None) -> str:
    """The conversation as JSON: the same message objects the history files hold."""
    document = {
        "user": user,
        "exported": exported,
        "model": model,
        "messages": [message.to_json() for message in messages],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def export_conversation(
    path: Path,
    user: str,
    messages: Sequence[Message],
    *,
    model: str | None = None,
    exported: str | None = None,
) -> Path:
    """Write the conversation to ``path`` (JSON when it ends in ``.json``, else Markdown).

    Refuses to replace an existing file (a typo should not destroy a document). The file is written
    to a temporary name and renamed, so a full disk never leaves half a file. Returns the full path.
    """
    path = path.expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if path.is_dir():
        raise UsageError(f"{path} is a directory.", hint="give a file name, such as chat.md or chat.json")
    if path.exists():
        raise UsageError(f"{path} already exists.", hint="give another file name, or move that file away")
    exported = exported or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    render = to_json if path.suffix.lower() == ".json" else to_markdown
    data = render(user, messages, exported=exported, model=model).encode("utf-8")
    # A temporary name beside the target, created with the usual permissions (umask applies),
    # then linked to the final name: link fails rather than replace a file created meanwhile.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileNotFoundError:
        raise UsageError(f"The folder {path.parent} does not exist.", hint="create it first") from None
    except OSError as exc:
        raise StorageError(f"Cannot write in {path.parent}: {exc.strerror}.") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise UsageError(f"{path} already exists.", hint="give another file name") from None
    except OSError as exc:
        raise StorageError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return path
