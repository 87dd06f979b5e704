"""Migration: a profile's single-conversation history files become conversations of its library.

``<user>.jsonl`` (the current conversation) and every ``<user>.<time>.archived`` (conversations reset
before) each become one conversation file in ``<user>.chats/``: the current one active, the archived
ones archived, each titled with its first words. Each source is done in three steps, every one
durable and each safe to repeat, so a crash at any instant loses nothing and the next start finishes:

1. the conversation's id is derived from the source (its first message's time and a hash of its name
   and first line), so doing a source again names the same conversation;
2. unless that conversation's file exists, it is written whole (temp file, fsync, hard link: never
   replacing a file);
3. the source is renamed into ``<user>.chats/migrated/``, kept byte for byte.

It runs under the old history's lock, which every writer of those files takes. A damaged source is
repaired first as ``HistoryStore`` always did (its damage kept in ``corrupt-``/``torn-`` files); a
source of a newer schema, or another user's, stops the migration (NewerSchemaError, StorageError) and is
left untouched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from edgechat_tui.core.messages import Message, stamp_ms
from edgechat_tui.storage.chat_format import (
    MessageEntry,
    chat_header,
    encode_messages,
    encode_meta,
    new_chat_id,
    new_message_id,
    title_from_words,
)
from edgechat_tui.storage.format import scan_file
from edgechat_tui.storage.fs import (
    durable_write,
    free_name,
    fsync_dir,
    hold_lock,
    open_regular,
    read_range,
    remove_stale_temps,
    storage_error,
)
from edgechat_tui.storage.paths import HISTORY_SUFFIX, ProfilePaths, legacy_sources, needs_migration
from edgechat_tui.storage.store import HistoryStore

__all__ = ["legacy_sources", "migrate_profile", "needs_migration"]


def _chat_id_for(source: Path, data: bytes, messages: list[Message], mtime: float) -> str:
    """The same id every time the same source is migrated."""
    first_line = data.split(b"\n", 1)[0]
    digest = hashlib.sha256(source.name.encode() + b"\0" + first_line).digest()
    ms = next((t for t in (stamp_ms(m.time) for m in messages if m.time) if t is not None), None)
    return new_chat_id(ms if ms is not None else int(mtime * 1000), int.from_bytes(digest[:4], "big"))


def _records(messages: list[Message], archived: bool) -> bytes:
    """The messages as a straight branch: one record per question and reply, as turns were saved."""
    lines: list[bytes] = []
    parent: str | None = None
    i = 0
    while i < len(messages):
        group = messages[i : i + 2]
        if len(group) == 2 and not (group[0].role == "user" and group[1].role == "assistant"):
            group = group[:1]
        entries = []
        for message in group:
            entry = MessageEntry(new_message_id(stamp_ms(message.time) or 0), parent, message)
            entries.append(entry)
            parent = entry.id
        lines.append(encode_messages(entries))
        i += len(group)
    first = next((m.content for m in messages if m.role == "user" and m.content.strip()), "")
    meta: dict[str, object] = {"title": title_from_words(first) if first else "", "titleSource": "words"}
    if archived:
        meta["archived"] = True
    lines.append(encode_meta(meta))
    return b"".join(lines)


def _read_source(path: Path) -> tuple[bytes, float] | None:
    fd = open_regular(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        return read_range(fd, 0, st.st_size), st.st_mtime
    finally:
        os.close(fd)


def _migrate_one(paths: ProfilePaths, source: Path, warn: Callable[[str], None]) -> str | None:
    """Steps 1-3 for one source (the caller holds the old history's lock). The conversation's id."""
    try:
        read = _read_source(source)
    except OSError as exc:
        raise storage_error(exc, "read", source) from exc
    if read is None:
        return None  # done by another process meanwhile
    data, mtime = read
    scan = scan_file(data, paths.user, source)  # raises for a newer schema or another user's file
    chat_id = None
    if scan.messages:
        chat_id = _chat_id_for(source, data, scan.messages, mtime)
        target = paths.chat_path(chat_id)
        content = None
        if not os.path.lexists(target):
            created = scan.messages[0].time or None
            content = chat_header(paths.user, chat_id, created, migrated_from=source.name) + \
                _records(scan.messages, archived=source.suffix == ".archived")
        with hold_lock(paths.lock, exclusive=True):
            # Whether or not the file is there: a crash between linking the temp file to it and
            # unlinking the temp leaves both, and this start is the one that finishes the job.
            remove_stale_temps(target)
            if content is not None:
                try:
                    durable_write(target, content, replace=False, hidden=False)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise storage_error(exc, "write the conversation", target) from exc
    try:
        paths.migrated.mkdir(mode=0o700, exist_ok=True)
        kept = paths.migrated / source.name
        if os.path.lexists(kept):
            kept = free_name(paths.migrated, lambda stamp: f"{source.name}.{stamp}")
        os.rename(source, kept)
        fsync_dir(paths.migrated)
        fsync_dir(source.parent)
    except FileNotFoundError:
        pass  # moved by another process meanwhile
    except OSError as exc:
        raise storage_error(exc, "move the migrated history", source) from exc
    return chat_id


def migrate_profile(paths: ProfilePaths, *, warn: Callable[[str], None]) -> list[str]:
    """Migrate every old history file of the profile; the ids of the conversations made (or found)."""
    current = paths.data_dir / f"{paths.user}{HISTORY_SUFFIX}"
    if os.path.lexists(current):
        # Damage is put right as it always was (kept aside), so what is migrated is what loads.
        HistoryStore(paths.data_dir, paths.user, warn=warn).load()
    made: list[str] = []
    with hold_lock(paths.data_dir / f"{paths.user}.lock", exclusive=True):
        for source in legacy_sources(paths):
            chat_id = _migrate_one(paths, source, warn)
            if chat_id is not None:
                made.append(chat_id)
    return made
