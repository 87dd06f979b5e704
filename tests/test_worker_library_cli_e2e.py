"""End to end: the library's command line (``edgechat chats``, ``search``, ``history --chat``, ``-m --chat``
/ ``--new``, ``reset``) as real ``edgechat --remote URL`` processes against our Worker in workerd.

The same promises as tests/test_cli_library.py makes for the local library, here through the
``conversations`` and ``search`` extensions: the ``--json`` shapes exactly as documented, newest first,
the id of a new conversation on stderr, every change visible to the next process, an unknown or
malformed id exit 1 with one clear line (and nothing sent), and users who never see each other's
conversations. The Worker runs as in tests/test_worker_e2e.py (its Workers AI stub answers
'You said "<message>". …' from what it was sent).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import run_cli
from tests.test_worker_e2e import WorkerProcess

ESC = "\x1b"
LIST_KEYS = {"id", "title", "messageCount", "created", "updated", "archived"}
HIT_KEYS = {"chat", "title", "role", "time", "snippet"}


@pytest.fixture(scope="module")
def worker() -> Iterator[str]:
    server = WorkerProcess()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def cli(worker, isolated_env, request):
    """``edgechat --remote URL --user U ARGS`` for a user of this test alone."""
    base = "".join(ch for ch in request.node.name.lower() if ch.isalnum())[-40:]

    def call(args, user: str = "", **kw):
        return run_cli(["--remote", worker, "--user", f"{base}{user}"[-64:], *args], isolated_env, **kw)

    return call


def ok(cli, args, user: str = ""):
    result = cli(args, user)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def listed(cli, *extra, user: str = "") -> list[dict]:
    return json.loads(ok(cli, ["chats", "--json", *extra], user).stdout)


def ask(cli, *args, user: str = "") -> dict:
    return json.loads(ok(cli, [*args, "--json"], user).stdout)


def test_list_new_chat_and_the_most_recent(cli) -> None:
    assert listed(cli) == [] and "No conversations" in ok(cli, ["chats"]).stdout
    first = ask(cli, "-m", "first question about zebras")
    assert first["messageCount"] == 2 and first["chat"]
    started = cli(["--new", "-m", "second question", "--json"])
    assert started.returncode == 0, started.stderr
    second = json.loads(started.stdout)
    assert second["chat"] != first["chat"] and f"new conversation {second['chat']}" in started.stderr
    assert "This is the first message" in second["message"]  # a new conversation: no context
    entries = listed(cli)
    assert [c["id"] for c in entries] == [second["chat"], first["chat"]]  # newest first
    for entry, title in zip(entries, ["second question", "first question about zebras"], strict=True):
        assert set(entry) == LIST_KEYS
        assert entry["title"] == title and entry["messageCount"] == 2 and entry["archived"] is False
        assert isinstance(entry["created"], str) and entry["created"] <= entry["updated"]
    # -m alone continues the most recent; --chat picks one, with its own context only.
    assert ask(cli, "-m", "more on the second")["chat"] == second["chat"]
    back = ask(cli, "--chat", first["chat"], "-m", "back to the zebras")
    assert back["chat"] == first["chat"] and back["messageCount"] == 4
    assert 'the first was "first question about zebras"' in back["message"]
    assert listed(cli)[0]["id"] == first["chat"]  # now the most recent
    text = ok(cli, ["chats"]).stdout.splitlines()
    assert text[0].startswith("*") and first["chat"] in text[0] and "4 messages" in text[0]
    assert second["chat"] in text[1] and "second question" in text[1]


def test_history_of_the_most_recent_and_of_a_chosen_one(cli) -> None:
    alpha = ask(cli, "-m", "alpha words")["chat"]
    beta = ask(cli, "--new", "-m", "beta words")["chat"]
    latest = ok(cli, ["history"]).stdout
    assert "beta words" in latest and "alpha words" not in latest
    chosen = json.loads(ok(cli, ["history", "--chat", alpha, "--format", "json"]).stdout)
    assert chosen["chat"] == alpha and chosen["title"] == "alpha words"
    assert [(m["role"], m["content"].split(".")[0]) for m in chosen["messages"]] == [
        ("user", "alpha words"), ("assistant", 'You said "alpha words"')]
    assert "alpha words" in ok(cli, ["history", "--chat", alpha]).stdout
    assert json.loads(ok(cli, ["history", "--format", "json"]).stdout)["chat"] == beta


def test_search_json_shape_newest_first_and_text(cli) -> None:
    lisbon = ask(cli, "-m", "Lisbon trip ideas")["chat"]
    ask(cli, "--new", "-m", "something else entirely")
    again = ask(cli, "--new", "-m", "back in lisbon")["chat"]
    hits = json.loads(ok(cli, ["search", "lisbon", "--json"]).stdout)
    assert hits and all(set(hit) == HIT_KEYS for hit in hits)
    assert [h["time"] for h in hits] == sorted((h["time"] for h in hits), reverse=True)
    users = [(h["chat"], h["title"], h["snippet"]) for h in hits if h["role"] == "user"]
    assert users == [(again, "back in lisbon", "back in lisbon"),
                     (lisbon, "Lisbon trip ideas", "Lisbon trip ideas")]
    assert {h["role"] for h in hits} == {"user", "assistant"}  # the stub's replies quote the words
    text = ok(cli, ["search", "lisb trip"]).stdout
    assert lisbon in text and "Lisbon trip ideas" in text and again not in text
    assert "No messages match" in ok(cli, ["search", "nothing-like-this"]).stdout
    empty = cli(["search", "***"])
    assert empty.returncode == 2 and "nothing to search" in empty.stderr, empty.stderr
    assert json.loads(ok(cli, ["search", "lisbon", "--json", "--limit", "1"]).stdout) == hits[:1]


def test_rename_archive_restore_delete_and_purge(cli) -> None:
    chat = ask(cli, "-m", "hello there")["chat"]
    assert "Renamed" in ok(cli, ["chats", "rename", chat, "Trip to Lisbon"]).stdout
    assert listed(cli)[0]["title"] == "Trip to Lisbon"
    assert "Archived" in ok(cli, ["chats", "archive", chat]).stdout
    assert listed(cli) == []
    [archived] = listed(cli, "--archived")
    assert archived["id"] == chat and archived["archived"] is True and set(archived) == LIST_KEYS
    refused = cli(["--chat", chat, "-m", "into the archive"])
    assert refused.returncode == 1 and refused.stdout == "" and "archived" in refused.stderr
    assert "Restored" in ok(cli, ["chats", "restore", chat]).stdout
    assert [(c["id"], c["archived"], c["messageCount"]) for c in listed(cli)] == [(chat, False, 2)]
    assert "trash" in ok(cli, ["chats", "delete", chat]).stdout
    assert listed(cli) == []
    [trashed] = listed(cli, "--deleted")
    assert trashed["id"] == chat and trashed["deletedAt"] and trashed["purgeAt"] > trashed["deletedAt"]
    assert "trash" in cli(["--chat", chat, "-m", "into the trash"]).stderr
    ok(cli, ["chats", "restore", chat])
    assert ask(cli, "--chat", chat, "-m", "restored and writable")["messageCount"] == 4
    ok(cli, ["chats", "delete", chat])
    assert "gone for good" in ok(cli, ["chats", "delete", chat, "--purge"]).stdout
    assert listed(cli, "--deleted") == [] and listed(cli) == []
    gone = cli(["history", "--chat", chat])
    assert gone.returncode == 1 and "no such conversation" in gone.stderr.lower()


def test_hostile_titles_print_as_inert_text(cli) -> None:
    chat = ask(cli, "-m", f"start {ESC}]52;c;AAAA{ESC}\\ here")["chat"]
    ok(cli, ["chats", "rename", chat, f"title {ESC}[31mred\u009b2J"])
    for args in (["chats"], ["chats", "--json"], ["search", "start"], ["search", "start", "--json"],
                 ["history"], ["history", "--format", "json"]):
        result = ok(cli, args)
        assert ESC not in result.stdout and "\u009b" not in result.stdout, args
    title = listed(cli)[0]["title"]
    assert title.startswith("title") and "red" in title and not any(ch in title for ch in (ESC, "\u009b"))


@pytest.mark.parametrize("args", [
    ["chats", "rename", "{id}", "x"], ["chats", "archive", "{id}"], ["chats", "restore", "{id}"],
    ["chats", "delete", "{id}"], ["chats", "delete", "{id}", "--purge"], ["history", "--chat", "{id}"],
    ["--chat", "{id}", "-m", "hi"],
])
@pytest.mark.parametrize("bad", ["0123456789abcd", "../../etc/passwd"])
def test_an_unknown_id_is_exit_1_with_one_clear_line(cli, args, bad) -> None:
    ask(cli, "-m", "so the profile exists")
    result = cli([a.replace("{id}", bad) for a in args])
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("edgechat: error: ") and len(lines) <= 2, lines
    assert ("no such conversation" if bad[0] == "0" else "not a conversation id") in lines[0].lower()
    assert "Traceback" not in result.stderr
    [only] = listed(cli)
    assert only["messageCount"] == 2 and only["title"] == "so the profile exists"  # nothing sent or changed


def test_reset_starts_a_new_conversation_and_archives_the_old(cli) -> None:
    chat = ask(cli, "-m", "before the reset")["chat"]
    assert chat in ok(cli, ["reset"]).stdout
    assert [c["id"] for c in listed(cli, "--archived")] == [chat]
    assert all(c["id"] != chat for c in listed(cli))
    after = ask(cli, "-m", "after the reset")
    assert after["chat"] != chat and after["messageCount"] == 2
    assert "This is the first message" in after["message"]  # the old context is not carried over
    assert "after the reset" in ok(cli, ["history"]).stdout
    assert "before the reset" not in ok(cli, ["history"]).stdout
    assert "before the reset" in ok(cli, ["history", "--chat", chat]).stdout


def test_two_users_never_see_each_others_conversations(cli) -> None:
    mine = ask(cli, "-m", "alice's plan about zeppelins", user="a")["chat"]
    ask(cli, "-m", "bob's own words", user="b")
    assert [c["id"] for c in listed(cli, user="b")] != [mine]
    assert all(c["id"] != mine for c in listed(cli, user="b") + listed(cli, "--archived", user="b"))
    assert json.loads(ok(cli, ["search", "zeppelins", "--json"], user="b").stdout) == []
    for args in (["chats", "rename", mine, "taken"], ["chats", "archive", mine], ["chats", "delete", mine],
                 ["chats", "restore", mine], ["history", "--chat", mine], ["--chat", mine, "-m", "hi"]):
        result = cli(args, "b")
        assert result.returncode == 1 and "no such conversation" in result.stderr.lower(), args
    [still] = listed(cli, user="a")
    assert (still["id"], still["title"], still["messageCount"]) == (mine, "alice's plan about zeppelins", 2)
    hits = json.loads(ok(cli, ["search", "zeppelins", "--json"], user="a").stdout)
    assert hits and {h["chat"] for h in hits} == {mine}
