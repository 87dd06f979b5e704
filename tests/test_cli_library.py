"""The library on the command line as scripts use it: real ``edgechat`` processes, Workers AI on loopback.

``chats`` (list, --archived, --deleted, --json, rename, archive, restore, delete), ``-m`` with ``--chat`` and
``--new``, ``history --chat``, ``search``, ``reset``; unknown ids; hostile titles and snippets; a seed
server, which keeps one conversation, says what it cannot do.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.fakes.seed_server import SeedServer
from tests.fakes.workers_ai import FakeWorkersAI, Reply

ESC = "\x1b"


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


@pytest.fixture
def env(isolated_env, fake):
    return dict(isolated_env, CLOUDFLARE_ACCOUNT_ID=fake.account_id, CLOUDFLARE_API_TOKEN=fake.token,
                EDGECHAT_API_BASE=fake.api_base, EDGECHAT_AUTO_TITLE="off")


def ok(args, env, **kw):
    result = run_cli(args, env, **kw)
    assert result.returncode == 0, (args, result.stderr)
    return result


def chats(env, *extra) -> list[dict]:
    return json.loads(ok(["chats", "--json", *extra], env).stdout)


def test_list_json_shape_order_and_the_most_recent(env, fake) -> None:
    assert chats(env) == [] and "No conversations" in ok(["chats"], env).stdout
    first = json.loads(ok(["-m", "first question", "--json"], env).stdout)["chat"]
    started = run_cli(["--new", "-m", "second question", "--json"], env)
    second = json.loads(started.stdout)["chat"]
    assert started.returncode == 0 and f"new conversation {second}" in started.stderr and second != first
    listed = chats(env)
    assert [c["id"] for c in listed] == [second, first]
    for entry in listed:
        assert set(entry) == {"id", "title", "messageCount", "created", "updated", "archived"}
        assert entry["messageCount"] == 2 and entry["archived"] is False
        assert entry["created"] <= entry["updated"]
    assert listed[0]["title"] == "second question"
    # -m continues the most recent; --chat picks one
    assert json.loads(ok(["-m", "more", "--json"], env).stdout)["chat"] == second
    continued = json.loads(ok(["--chat", first, "-m", "back to the first", "--json"], env).stdout)
    assert continued["chat"] == first and continued["messageCount"] == 4
    assert "first: first question" in continued["message"]  # its own context, not the other one's
    assert chats(env)[0]["id"] == first  # now the most recent
    text = ok(["chats"], env).stdout.splitlines()
    assert text[0].startswith("*") and first in text[0] and second in text[1]


def test_rename_archive_restore_delete_and_purge(env, fake) -> None:
    chat = json.loads(ok(["-m", "hello", "--json"], env).stdout)["chat"]
    assert "Renamed" in ok(["chats", "rename", chat, "Trip to Lisbon"], env).stdout
    assert chats(env)[0]["title"] == "Trip to Lisbon"
    ok(["chats", "archive", chat], env)
    assert chats(env) == [] and [c["id"] for c in chats(env, "--archived")] == [chat]
    refused = run_cli(["--chat", chat, "-m", "into the archive"], env)
    assert refused.returncode == 1 and "archived" in refused.stderr and len(fake.run_requests) == 1
    ok(["chats", "restore", chat], env)
    assert [c["id"] for c in chats(env)] == [chat]
    moved = ok(["chats", "delete", chat], env)
    assert "trash" in moved.stdout and chats(env) == []
    [trashed] = chats(env, "--deleted")
    assert trashed["deletedAt"] and trashed["purgeAt"] > trashed["deletedAt"]
    ok(["chats", "restore", chat], env)
    ok(["chats", "delete", chat], env)
    assert "gone for good" in ok(["chats", "delete", chat, "--purge"], env).stdout
    assert chats(env, "--deleted") == []


@pytest.mark.parametrize("args", [
    ["chats", "rename", "{id}", "x"], ["chats", "archive", "{id}"], ["chats", "restore", "{id}"],
    ["chats", "delete", "{id}"], ["history", "--chat", "{id}"], ["--chat", "{id}", "-m", "hi"],
])
@pytest.mark.parametrize("bad", ["0123456789abcd", "../../etc/passwd"])
def test_an_unknown_id_is_exit_1_with_one_clear_line(env, fake, args, bad) -> None:
    ok(["-m", "so the profile exists"], env)
    result = run_cli([a.replace("{id}", bad) for a in args], env)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("edgechat: error: There is no conversation") and len(lines) <= 2
    assert len(fake.run_requests) == 1  # nothing sent for it


def test_history_of_a_chosen_conversation(env, fake) -> None:
    first = json.loads(ok(["-m", "alpha", "--json"], env).stdout)["chat"]
    ok(["--new", "-m", "beta"], env)
    assert "beta" in ok(["history"], env).stdout and "alpha" not in ok(["history"], env).stdout
    chosen = json.loads(ok(["history", "--chat", first, "--format", "json"], env).stdout)
    assert chosen["chat"] == first
    assert [m["content"] for m in chosen["messages"]] == ["alpha", "You said: alpha"]
    markdown = ok(["history", "--chat", first], env).stdout
    assert f"{chosen['title']} · conversation {first} · exported " in markdown


def test_search_json_text_and_errors(env, fake) -> None:
    fake.enqueue(Reply("Pastéis de nata in Belém"), Reply("unrelated"))
    chat = json.loads(ok(["-m", "Lisbon trip ideas", "--json"], env).stdout)["chat"]
    ok(["--new", "-m", "something else"], env)
    hits = json.loads(ok(["search", "belem", "--json"], env).stdout)
    assert hits == [{"chat": chat, "title": "Lisbon trip ideas", "role": "assistant",
                     "time": hits[0]["time"], "snippet": "Pastéis de nata in Belém"}]
    text = ok(["search", "lisb trip"], env).stdout
    assert chat in text and "Lisbon trip ideas" in text
    assert "No messages match" in ok(["search", "nothing-like-this"], env).stdout
    empty = run_cli(["search", "***"], env)
    assert empty.returncode == 2 and "nothing to search" in empty.stderr
    assert run_cli(["search", "x", "--limit", "0"], env).returncode == 2


def test_hostile_titles_and_replies_print_as_inert_text(env, fake) -> None:
    fake.enqueue(Reply(f"evil {ESC}]52;c;AAAA{ESC}\\ {ESC}[2J reply \u009b31m"))
    chat = json.loads(ok(["-m", "start", "--json"], env).stdout)["chat"]
    ok(["chats", "rename", chat, f"title {ESC}[31mred\u009b2J"], env)
    for args in (["chats"], ["chats", "--json"], ["search", "evil"], ["search", "evil", "--json"],
                 ["history"], ["history", "--format", "json"]):
        result = ok(args, env)
        assert ESC not in result.stdout and "\u009b" not in result.stdout, args


def test_reset_starts_a_new_conversation_and_archives_the_old(env, fake) -> None:
    chat = json.loads(ok(["-m", "before", "--json"], env).stdout)["chat"]
    assert chat in ok(["reset"], env).stdout
    assert [c["id"] for c in chats(env, "--archived")] == [chat]
    after = json.loads(ok(["-m", "after", "--json"], env).stdout)
    assert after["chat"] != chat and after["messageCount"] == 2


def test_the_library_needs_no_credentials_to_read(isolated_env, env, fake) -> None:
    ok(["-m", "remember me"], env)
    bare = {k: v for k, v in env.items() if not k.startswith("CLOUDFLARE_")}
    assert len(json.loads(ok(["chats", "--json"], bare).stdout)) == 1
    assert json.loads(ok(["search", "remember", "--json"], bare).stdout)


def test_a_seed_server_says_what_it_cannot_do(isolated_env) -> None:
    with SeedServer() as seed:
        env = dict(isolated_env, EDGECHAT_REMOTE_URL=seed.url)
        for args in (["chats"], ["chats", "--json"], ["chats", "--archived"], ["search", "x"],
                     ["search", "x", "--json"], ["chats", "rename", "0123456789abcd", "t"],
                     ["chats", "archive", "0123456789abcd"], ["chats", "restore", "0123456789abcd"],
                     ["chats", "delete", "0123456789abcd"], ["--new", "-m", "hi"],
                     ["--chat", "0123456789abcd", "-m", "hi"], ["history", "--chat", "0123456789abcd"]):
            result = run_cli(args, env)
            assert result.returncode == 1 and result.stdout == "", (args, result.stdout)
            assert "not available" in result.stderr, (args, result.stderr)
            assert "Traceback" not in result.stderr, (args, result.stderr)
        assert seed.count("/api/chat") == 0  # nothing was sent for any of them
        assert run_cli(["-m", "hi"], env).returncode == 0  # its one conversation still works
        reset = run_cli(["reset"], env)  # the seed's server offers no reset: the CLI names the command
        assert reset.returncode == 1 and "edgechat reset" in reset.stderr and "not available" in reset.stderr
