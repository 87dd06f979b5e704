"""A loopback fake of an agent endpoint with the conversation library (docs/protocol.md, ``conversations``
and ``search``), for the client's fault tests.

:class:`LibraryServer` is :class:`~tests.fakes.agent_server.AgentServer` (so every other extension and
every scripted fault works as there) plus, written again from the protocol and not from the Worker:

- many conversations per user, each a tree of messages with integer ids unique within the user: list
  (active, archived, trash), create, get, rename, archive, restore, delete to the trash and purge,
  switch branch; ids of 14 characters of Crockford base32;
- turns (chat with ``conversationId``, regenerate, edit, continue) answered as JSON or, when asked, as
  server-sent events, with :class:`~tests.fakes.agent_server.ScriptedStream` faults (cut, ended without
  ``done``, an ``error`` event) on any turn route; ``truncate_at`` cuts replies (``truncated``) for
  continue;
- ``Idempotency-Key``: a repeat answers the stored turn (``replayed``, one ``delta`` with the whole
  reply when streamed), a key with another request is 400;
- history per conversation, paged along the branch (cursor ``m<id>``); search with prefix terms,
  snippets and highlight offsets;
- the library's errors: 400 ``bad_request`` for malformed ids, 404 ``conversation_not_found`` /
  ``message_not_found``, 409 ``conflict``.

Hostile fields are made by writing the state directly (``server.library(user).conversations[id]
["title"] = "\\x1b]0;…"``): this server stores what it is given and cleans nothing, as a broken or
malicious one would. Malformed answers are scripted as on any route (``Scripted(route=…)``).

Run alone::

    python -m tests.fakes.library_server --port 0 [--token T] [--truncate-at 40]
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fakes.agent_server import (
    AgentHandler,
    AgentServer,
    ScriptedStream,
    error_body,
    sse_event,
    valid_user_id,
)
from tests.fakes.seed_server import RecordedRequest, Scripted, SeedHandler, seed_reply, serve_main

LIBRARY_CAPABILITIES = ("stream", "history", "reset", "idempotency", "history-pages", "conversations",
                        "search")
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{14}")
_ROUTE = re.compile(r"/api/conversations/([^/]+)(?:/([a-z]+))?")
_STATUS = {"bad_request": 400, "conversation_not_found": 404, "message_not_found": 404, "conflict": 409}


class Refused(Exception):
    def __init__(self, code: str, error: str) -> None:
        super().__init__(error)
        self.code, self.error = code, error


@dataclass
class Library:
    """One user's conversations and messages."""

    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def require(self, chat_id: str, *, trash: bool = False) -> dict[str, Any]:
        if not _ID.fullmatch(chat_id):
            raise Refused("bad_request", "Invalid conversation id")
        row = self.conversations.get(chat_id)
        if row is None or (row["deletedAt"] is not None and not trash):
            raise Refused("conversation_not_found", f"No conversation {chat_id}")
        return row

    def branch(self, row: dict[str, Any], leaf: int | None = None) -> list[dict[str, Any]]:
        out, at = [], row["leaf"] if leaf is None else leaf
        while at is not None:
            out.append(self.messages[at])
            at = self.messages[at]["parent"]
        return out[::-1]

    def children(self, row: dict[str, Any], parent: int | None) -> list[int]:
        return sorted(m["id"] for m in self.messages.values()
                      if m["conv"] == row["id"] and m["parent"] == parent)

    def most_recent(self) -> dict[str, Any] | None:
        rows = [r for r in self.conversations.values() if not r["archived"] and r["deletedAt"] is None]
        return max(rows, key=lambda r: (r["updated"], r["id"]), default=None)


class LibraryServer(AgentServer):
    """An agent endpoint offering the conversation library, on 127.0.0.1."""

    def __init__(self, *, capabilities: tuple[str, ...] = LIBRARY_CAPABILITIES,
                 truncate_at: int | None = None, **kw: Any) -> None:
        super().__init__(capabilities=capabilities, **kw)
        self.truncate_at = truncate_at
        self.libraries: dict[str, Library] = {}
        self._seq = itertools.count(1)
        self._clock = itertools.count(1)
        self._random = random.Random(7)
        self._library_lock = threading.RLock()

    def health(self) -> dict[str, Any]:
        return {**super().health(), "protocol": 3}

    def library(self, user: str) -> Library:
        with self._library_lock:
            return self.libraries.setdefault(user, Library())

    # --- state --------------------------------------------------------------------------------

    def _now(self) -> str:
        tick = next(self._clock)  # strictly increasing, so "newest first" is never a tie
        return f"2026-12-01T{tick // 3600 % 24:02d}:{tick // 60 % 60:02d}:{tick % 60:02d}.000Z"

    def new_conversation(self, lib: Library, title: str | None = None) -> dict[str, Any]:
        stamp = 1_764_000_000_000 + next(self._clock)
        head = "".join(_ALPHABET[(stamp >> (5 * i)) & 31] for i in reversed(range(10)))
        chat_id = head + "".join(self._random.choice(_ALPHABET) for _ in range(4))
        now = self._now()
        row = {"id": chat_id, "title": title or "", "user_title": bool(title), "created": now, "updated": now,
               "archived": False, "deletedAt": None, "leaf": None}
        lib.conversations[chat_id] = row
        return row

    def summary(self, lib: Library, row: dict[str, Any]) -> dict[str, Any]:
        info = {k: row[k] for k in ("id", "title", "created", "updated", "archived", "leaf")}
        info["messageCount"] = len(lib.branch(row))
        if row["deletedAt"] is not None:
            info |= {"deletedAt": row["deletedAt"], "purgeAt": "2026-12-31T00:00:00.000Z"}
        return info

    def wire(self, lib: Library, row: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
        out = {k: m[k] for k in ("id", "parent", "role", "content", "time")}
        out["siblings"] = lib.children(row, m["parent"])
        if m["role"] == "assistant":
            out |= {"stopped": m["stopped"], "truncated": m["truncated"]}
        return out

    def add(self, lib: Library, row: dict[str, Any], parent: int | None, role: str, content: str,
            **extra: Any) -> dict[str, Any]:
        m = {"id": next(self._seq), "conv": row["id"], "parent": parent, "role": role, "content": content,
             "time": self._now(), "stopped": False, "truncated": False, "rest": "", **extra}
        lib.messages[m["id"]] = m
        row["leaf"], row["updated"] = m["id"], m["time"]
        return m

    # --- routing ------------------------------------------------------------------------------

    def route(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None) -> None:
        path, method = request.path, request.method
        library_route = path in ("/api/conversations", "/api/search") or _ROUTE.fullmatch(path) or (
            path in ("/api/chat", "/api/history", "/api/reset"))
        if not library_route or (path == "/api/chat" and method != "POST"):
            super().route(h, request, answer)
            return
        if answer is not None and not isinstance(answer, ScriptedStream):
            h.reply_scripted(answer)
            return
        try:
            body = self._body(request) if method == "POST" else {}
            user = (request.query.get("userId") or [""])[0] if method == "GET" else body.get("userId") or ""
            user = user or self.whoami_user or "default-user"
            if not valid_user_id(user):
                raise Refused("bad_request", "Invalid userId")
            with self._library_lock:
                self._route(h, request, answer, user, body)
        except Refused as refused:
            h.reply_json(_STATUS[refused.code], error_body(refused.code, refused.error))

    def _body(self, request: RecordedRequest) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        try:
            data = json.loads(request.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise Refused("bad_request", "The body must be a JSON object")
        return data

    def _route(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None, user: str,
               body: dict[str, Any]) -> None:
        lib, path, method, q = self.library(user), request.path, request.method, request.query
        if path == "/api/conversations" and method == "GET":
            archived = (q.get("archived") or ["0"])[0] == "1"
            deleted = (q.get("deleted") or ["0"])[0] == "1"
            rows = [r for r in lib.conversations.values()
                    if (r["deletedAt"] is not None) == deleted and (deleted or r["archived"] == archived)]
            rows.sort(key=lambda r: (r["updated"], r["id"]), reverse=True)
            current = lib.most_recent()
            h.reply_json(200, {"userId": user, "conversations": [self.summary(lib, r) for r in rows],
                               "current": current["id"] if current else None})
        elif path == "/api/conversations" and method == "POST":
            title = body.get("title")
            h.reply_json(200, {"conversation": self.summary(lib, self.new_conversation(lib, title))})
        elif path == "/api/search" and method == "GET":
            h.reply_json(200, self.search(lib, (q.get("q") or [""])[0], int((q.get("limit") or ["50"])[0])))
        elif path == "/api/history":
            self.library_history(h, lib, user, q)
        elif path == "/api/reset" and method == "POST":
            old = lib.most_recent()
            archived = None
            if old is not None and old["leaf"] is not None:
                old["archived"], archived = True, old["id"]
            fresh = lib.most_recent() or self.new_conversation(lib)
            h.reply_json(200, {"ok": True, "messageCount": 0, "archived": archived,
                               "conversationId": fresh["id"]})
        elif path == "/api/chat":
            self.turn(h, request, answer, lib, "chat", body.get("conversationId"), body)
        else:
            match = _ROUTE.fullmatch(path)
            assert match is not None
            self.conversation_route(h, request, answer, lib, unquote(match.group(1)), match.group(2), body)

    def conversation_route(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None,
                           lib: Library, chat_id: str, action: str | None, body: dict[str, Any]) -> None:
        if action is None and request.method == "GET":
            h.reply_json(200, {"conversation": self.summary(lib, lib.require(chat_id, trash=True))})
            return
        if action in ("regenerate", "edit", "continue"):
            self.turn(h, request, answer, lib, action, chat_id, body)
            return
        row = lib.require(chat_id, trash=action in ("restore", "delete"))
        if action == "rename":
            if not isinstance(body.get("title"), str) or not body["title"].strip():
                raise Refused("bad_request", "The request needs a title")
            row["title"], row["user_title"] = body["title"], True
        elif action == "archive":
            row["archived"] = True
        elif action == "restore":
            row["archived"], row["deletedAt"] = False, None
        elif action == "delete":
            if body.get("purge") is True:
                if row["deletedAt"] is None:
                    raise Refused("conflict", "Only a conversation in the trash can be purged")
                del lib.conversations[chat_id]
                for seq in [s for s, m in lib.messages.items() if m["conv"] == chat_id]:
                    del lib.messages[seq]
                h.reply_json(200, {"ok": True, "purged": chat_id})
                return
            row["deletedAt"] = row["deletedAt"] or self._now()
        elif action == "switch":
            at = self.message_of(lib, row, body.get("messageId"), required=True)
            while kids := lib.children(row, at["id"]):
                at = lib.messages[kids[-1]]
            row["leaf"] = at["id"]
        else:
            h.reply_json(404, error_body("not_found", "No such route"))
            return
        h.reply_json(200, {"ok": True, "conversation": self.summary(lib, row)})

    def message_of(self, lib: Library, row: dict[str, Any], raw: Any, *, required: bool = False) -> Any:
        if raw is None and not required:
            return None
        if type(raw) is not int or raw < 1:
            raise Refused("bad_request", "messageId must be a whole number from 1")
        m = lib.messages.get(raw)
        if m is None or m["conv"] != row["id"]:
            raise Refused("message_not_found", f"No message {raw} in this conversation")
        return m

    # --- history and search -------------------------------------------------------------------

    def library_history(self, h: SeedHandler, lib: Library, user: str, q: dict[str, list[str]]) -> None:
        chat_id = (q.get("conversationId") or [None])[0]
        row = lib.require(chat_id) if chat_id is not None else lib.most_recent()
        if row is None:
            h.reply_json(200, {"userId": user, "conversationId": None, "title": None, "messageCount": 0,
                               "messages": [], "previous": None})
            return
        branch = lib.branch(row)
        before = (q.get("before") or [None])[0]
        end = len(branch)
        if before is not None:
            ids = [f"m{m['id']}" for m in branch]
            if before not in ids:
                raise Refused("bad_request", "Invalid history cursor")
            end = ids.index(before)
        limit = int((q.get("limit") or [str(self.page_size)])[0])
        start = max(0, end - min(limit, self.page_size))
        h.reply_json(200, {"userId": user, "conversationId": row["id"], "title": row["title"],
                           "messageCount": len(branch),
                           "messages": [self.wire(lib, row, m) for m in branch[start:end]],
                           "previous": f"m{branch[start]['id']}" if start > 0 else None})

    def search(self, lib: Library, query: str, limit: int) -> dict[str, Any]:
        terms = [t.lower() for t in re.findall(r"\w+", query)]
        if not terms:
            raise Refused("bad_request", "The request needs a q with at least one word")
        results = []
        for m in sorted(lib.messages.values(), key=lambda m: m["id"], reverse=True):
            row = lib.conversations[m["conv"]]
            words = [(w.start(), w.end()) for w in re.finditer(r"\w+", m["content"])]
            marks = [(s, e) for s, e in words if any(m["content"][s:e].lower().startswith(t) for t in terms)]
            found = {t for t in terms for s, e in words if m["content"][s:e].lower().startswith(t)}
            if row["deletedAt"] is not None or found != set(terms):
                continue
            results.append({"chat": row["id"], "title": row["title"], "role": m["role"], "time": m["time"],
                            "messageId": m["id"], "archived": row["archived"], "snippet": m["content"],
                            "highlights": [list(r) for r in marks]})
            if len(results) >= limit:
                break
        return {"query": query, "engine": "fake", "results": results}

    # --- turns ----------------------------------------------------------------------------------

    def turn(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None, lib: Library,
             action: str, chat_id: Any, body: dict[str, Any]) -> None:
        key = request.headers.get("idempotency-key")
        fingerprint = json.dumps([request.path, {k: v for k, v in body.items() if k != "userId"}])
        streams = "text/event-stream" in request.headers.get("accept", "")
        if key is not None and key in lib.keys:
            stored_print, outcome = lib.keys[key]
            if stored_print != fingerprint:
                raise Refused("bad_request", "This Idempotency-Key was sent with another request")
            self.reply_turn(h, {**outcome, "replayed": True}, streams, [outcome["message"]], replayed=True)
            return
        commit, outcome, pieces = self.plan(lib, action, chat_id, body)
        fault = answer if isinstance(answer, ScriptedStream) else None
        if not streams:
            commit(len(pieces))
            self.remember(lib, key, fingerprint, outcome)
            self.reply_turn(h, outcome, False, pieces)
            return
        assert isinstance(h, AgentHandler)
        h.start_stream()
        for i, piece in enumerate([*pieces, None]):
            if fault is not None and fault.error_event is not None and i == fault.error_after:
                h.send_chunk(sse_event("error", fault.error_event))
                h.end_stream()
                return
            if fault is not None and i in (fault.cut_after, fault.end_after):
                if fault.store:
                    self.remember(lib, key, fingerprint, {**commit(i, stopped=True), "stopped": True})
                h.drop_connection() if i == fault.cut_after else h.end_stream()
                return
            if piece is not None:
                h.send_chunk(sse_event("delta", {"text": piece}))
        commit(len(pieces))
        self.remember(lib, key, fingerprint, outcome)
        h.send_chunk(sse_event("done", outcome))
        h.end_stream()

    def remember(self, lib: Library, key: str | None, fingerprint: str, outcome: dict[str, Any]) -> None:
        if key is not None:
            lib.keys[key] = (fingerprint, outcome)

    def reply_turn(self, h: SeedHandler, outcome: dict[str, Any], streams: bool, pieces: list[str], *,
                   replayed: bool = False) -> None:
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        if not streams:
            h.reply_json(200, outcome, headers)
            return
        assert isinstance(h, AgentHandler)
        h.send_response(200)
        for name, value in {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked",
                            **headers}.items():
            h.send_header(name, value)
        h.end_headers()
        for piece in pieces:
            h.send_chunk(sse_event("delta", {"text": piece}))
        h.send_chunk(sse_event("done", outcome))
        h.end_stream()

    def plan(self, lib: Library, action: str, chat_id: Any,
             body: dict[str, Any]) -> tuple[Any, dict, list[str]]:
        """What the turn will store, as a function to call once its pieces are sent, its answer, and the
        pieces of its reply."""
        if chat_id is None and action == "chat":
            row = lib.most_recent() or self.new_conversation(lib)
        elif not isinstance(chat_id, str):
            raise Refused("bad_request", "Invalid conversationId")
        else:
            row = lib.require(chat_id)
        if row["archived"]:
            raise Refused("conflict", "The conversation is archived: restore it first")
        branch = lib.branch(row)
        parent: int | None
        if action in ("chat", "edit"):
            text = body.get("message")
            if not isinstance(text, str) or not text.strip():
                raise Refused("bad_request", "The request needs a message")
            parent = row["leaf"]
            if action == "edit":
                target = self.message_of(lib, row, body.get("messageId"))
                questions = [m for m in branch if m["role"] == "user"]
                target = target or (questions[-1] if questions else None)
                if target is None or target["role"] != "user":
                    raise Refused("conflict" if target is None else "bad_request", "Nothing to edit")
                parent = target["parent"]
        elif action == "regenerate":
            target = self.message_of(lib, row, body.get("messageId")) or (branch[-1] if branch else None)
            if target is None or target["role"] != "assistant":
                raise Refused("conflict" if target is None else "bad_request", "Nothing to regenerate")
            question = lib.messages[target["parent"]]
            text, parent = question["content"], question["parent"]
        else:  # continue
            leaf = branch[-1] if branch else None
            if leaf is None or leaf["role"] != "assistant" or not (leaf["truncated"] or leaf["stopped"]):
                raise Refused("conflict", "There is no cut reply to continue")
            return self.plan_continue(lib, row, leaf)
        above = lib.branch(row, parent) if parent is not None else []
        context = [*above, {"role": "user", "content": text}]
        full = seed_reply(text, context)
        reply, rest = full, ""
        if self.truncate_at is not None and len(full) > self.truncate_at:
            reply, rest = full[: self.truncate_at], full[self.truncate_at:]
        pieces = re.findall(r"\s*\S+\s*|\s+", reply) or [reply]
        ids = {"user": None, "reply": None}

        def commit(sent: int, *, stopped: bool = False) -> dict[str, Any]:
            if action == "regenerate":
                question_id = question["id"]
            else:
                question_id = self.add(lib, row, parent, "user", text)["id"]
                ids["user"] = question_id
            shown = "".join(pieces[:sent])
            m = self.add(lib, row, question_id, "assistant", shown, stopped=stopped,
                         truncated=bool(rest) and not stopped, rest=rest)
            ids["reply"] = m["id"]
            outcome.update(messageId=m["id"], userMessageId=ids["user"], messageCount=len(lib.branch(row)),
                           message=shown)
            return dict(outcome)

        outcome: dict[str, Any] = {"message": reply, "conversationId": row["id"], "truncated": bool(rest)}
        return commit, outcome, pieces

    def plan_continue(self, lib: Library, row: dict[str, Any],
                      leaf: dict[str, Any]) -> tuple[Any, dict, list]:
        more = leaf["rest"] or " and so on."
        size = self.truncate_at or len(more)
        added, rest = more[:size], more[size:]
        pieces = re.findall(r"\s*\S+\s*|\s+", added) or [added]

        def commit(sent: int, *, stopped: bool = False) -> dict[str, Any]:
            shown = "".join(pieces[:sent])
            leaf["content"] += shown
            leaf["rest"] = more[len(shown):]
            leaf["truncated"], leaf["stopped"] = bool(leaf["rest"]) and not stopped, stopped
            row["updated"] = self._now()
            outcome.update(message=leaf["content"], appended=shown, truncated=leaf["truncated"])
            return dict(outcome)

        outcome: dict[str, Any] = {"message": leaf["content"] + added, "appended": added,
                                   "messageCount": len(lib.branch(row)), "conversationId": row["id"],
                                   "messageId": leaf["id"], "truncated": bool(rest)}
        return commit, outcome, pieces


def main(argv: list[str]) -> None:
    serve_main(LibraryServer, argv, extra=[
        ("--token", {"default": None, "help": "require this bearer token"}),
        ("--truncate-at", {"type": int, "default": None, "help": "cut replies at this many characters"}),
    ])


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["LIBRARY_CAPABILITIES", "Library", "LibraryServer"]
