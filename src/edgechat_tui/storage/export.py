"""Writing a conversation to a file: Markdown to read, JSON to keep or process.

Pure Python, no Textual: the chat screen's ``/export`` calls :func:`export_conversation` in a
thread, and ``edgechat history`` prints :func:`to_markdown`.

Everything in a conversation is untrusted (model replies, and times and model names read from a
history file), so neither format can carry a terminal control, and the Markdown reads back as the
conversation it is whatever a message holds: each message's text sits in a code fence longer than any
run of backticks in it, so an unclosed fence, a ``#`` heading or HTML in a reply stays text inside its
own message, and every turn heading is a ``##`` heading of the export itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from edgechat_tui.core.errors import StorageError, UsageError
from edgechat_tui.core.messages import Message
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.storage.fs import durable_write

__all__ = ["default_export_path", "export_conversation", "to_json", "to_markdown"]

# DEL and the C1 controls (U+009B is a CSI): json.dumps passes them raw; \u escapes mean the same text.
_UNSAFE_IN_JSON = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}
_BACKTICKS = re.compile(r"`+")
_SPACES = re.compile(r"\s+")
# Characters that would make a heading's text act as Markdown or HTML.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>#|!&~{}()])")


def default_export_path(user: str, when: datetime | None = None, directory: Path | None = None) -> Path:
    """``edgechat-<user>-<YYYYmmdd-HHMMSS>.md`` in the current directory: a name that rarely collides."""
    when = when or datetime.now(UTC)
    return (directory or Path.cwd()) / f"edgechat-{user}-{when:%Y%m%d-%H%M%S}.md"


def _inline(text: str) -> str:
    """A field (a time, a model name) as plain text on one line of a heading: no controls, no Markdown."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", _SPACES.sub(" ", sanitize(text)).strip())


def _fenced(text: str) -> list[str]:
    """``text`` as a code block nothing in it can close: the fence is longer than any backtick run."""
    body = sanitize(text).rstrip("\n")
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *body.split("\n"), fence] if body else [fence, fence]


def to_markdown(user: str, messages: Sequence[Message], *, exported: str, model: str | None,
                title: str | None = None, chat: str | None = None) -> str:
    """The conversation as a Markdown document: a ``##`` heading per message, its text fenced; the
    conversation's ``title`` and id (``chat``), where known, on the line under the title."""
    lines = [f"# edgechat conversation: {user}", ""]
    details = [_inline(title)] if title and _inline(title) else []
    if chat:
        details.append(f"conversation {_inline(chat)}")
    details += [f"exported {_inline(exported)}", f"{len(messages)} messages"]
    if model:
        details.append(f"model {_inline(model)}")
    lines += [" · ".join(details), ""]
    for message in messages:
        if message.role == "user":
            title = user
        elif message.role == "assistant":
            title = "assistant" + (f" ({_inline(message.model)})" if message.model else "")
        else:
            title = "system"
        if message.time:
            title += f" · {_inline(message.time)}"
        if message.stopped:
            title += " · stopped"
        lines += [f"## {title}", "", *_fenced(message.content), ""]
    return "\n".join(lines)


def to_json(user: str, messages: Sequence[Message], *, exported: str, model: str | None,
            title: str | None = None, chat: str | None = None) -> str:
    """The conversation as JSON: the same message objects the history files hold (and the
    conversation's ``chat`` id and ``title`` where known).

    Non-ASCII text stays readable; C0 controls are escaped by JSON, DEL and C1 here, as ``--json`` does.
    """
    document: dict[str, object] = {"user": user, "exported": exported, "model": model}
    if chat is not None:
        document["chat"] = chat
        document["title"] = sanitize(title or "")
    document["messages"] = [message.to_json() for message in messages]
    return json.dumps(document, ensure_ascii=False, indent=2).translate(_UNSAFE_IN_JSON) + "\n"


def export_conversation(
    path: Path,
    user: str,
    messages: Sequence[Message],
    *,
    model: str | None = None,
    exported: str | None = None,
    title: str | None = None,
    chat: str | None = None,
) -> Path:
    """Write the conversation to ``path`` (JSON when it ends in ``.json``, else Markdown).

    Refuses to replace an existing file (a typo should not destroy a document). The file is created
    0600, like the history it copies, written whole (temp file, fsync, link), so a full disk never
    leaves half a file. Returns the full path.
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
    data = render(user, messages, exported=exported, model=model, title=title, chat=chat).encode("utf-8")
    try:
        durable_write(path, data, mode=0o600, replace=False)
    except FileExistsError:
        raise UsageError(f"{path} already exists.", hint="give another file name") from None
    except FileNotFoundError:
        raise UsageError(f"The folder {path.parent} does not exist.", hint="create it first") from None
    except OSError as exc:
        raise StorageError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    return path
