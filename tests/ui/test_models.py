"""Models, usage and cost in the chat screen: the /model list from the loopback catalog, the cache,
the fallback, the usage line under each reply and /usage's sums."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

from edgechat_tui.backends.local.catalog import FRESH_FOR, ModelCatalog
from edgechat_tui.core.catalog import CatalogModel, ModelPrice, builtin_models, reply_cost
from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.storage.catalog_cache import read_cache, write_cache
from edgechat_tui.storage.store import encode_header, encode_turn
from edgechat_tui.ui.screens.model_picker import ModelPicker
from edgechat_tui.ui.usage_text import dollars_text, neurons_text
from tests.fakes.agent_server import AgentServer
from tests.fakes.model_catalog import catalog_item
from tests.fakes.workers_ai import ErrorReply, Reply
from tests.ui.conftest import SIZE, make_app, make_settings, screen_text, send, wait_ready, wait_until

BIG = "@cf/acme/big-model"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def add_big_model(fake, window: int = 200_000) -> None:
    fake.models[BIG] = window
    fake.catalog.append(catalog_item(BIG, window=window, price=(1.0, 2.0), function_calling=True,
                                     description="A big model [b]for[/b] tests."))


async def open_models(pilot) -> ModelPicker:
    app = pilot.app
    app.chat.prompt.set_text("/model")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), what="the model list")
    return app.screen


async def choose(pilot, picker: ModelPicker, model: str) -> None:
    await wait_until(pilot, lambda: model in picker.model_ids, what=f"{model} in the list")
    while picker.query_one("#models").highlighted_option.id != model:
        await pilot.press("down")
    await pilot.press("enter")


def cache_path(settings):
    return ModelCatalog(settings).path


async def test_the_model_list_comes_from_the_account_and_choosing_sets_the_budget(settings, fake):
    add_big_model(fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        picker = await open_models(pilot)
        await wait_until(pilot, lambda: picker.catalog.source == "account", what="the account's list")
        assert picker.model_ids[0] == LLAMA  # the model in use first, marked
        assert sorted(picker.model_ids) == sorted(fake.models)
        await pilot.pause()
        text = screen_text(app)
        assert "● " + LLAMA in text and "24k ctx · $0.29/$2.25 · tools" in text
        assert "200k ctx · $1.00/$2.00 · tools" in text
        assert "your account's models (fetched just now)" in text
        await choose(pilot, picker, BIG)
        await wait_until(pilot, lambda: app.chat.header.model == BIG, what="the header")
        await wait_until(pilot, lambda: "/200k" in app.chat.status.plain, what="the budget")
        assert (await app.agent.context_preview()).window == 200_000
        assert "context window: 200,000 tokens (from your account's model list)" in \
            app.chat.chat_log.entries[-1].text
        await send(pilot, "hello big")
        await wait_ready(pilot)
        assert fake.run_requests[-1].model == BIG
        # The cache was written, owner-only.
        assert read_cache(cache_path(settings)).models[-1].id == BIG
        assert cache_path(settings).stat().st_mode & 0o077 == 0


async def test_a_fresh_cache_is_used_without_asking_the_account(settings, fake):
    cached = [CatalogModel(LLAMA, context_window=48_000, price=ModelPrice(0.5, 0.5)),
              CatalogModel("@cf/acme/cached-only", context_window=9000)]
    write_cache(cache_path(settings), cached, time.time() - 60)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        # The cached window applies from the start.
        await wait_until(pilot, lambda: "/48k" in app.chat.status.plain, what="the cached window")
        picker = await open_models(pilot)
        assert picker.model_ids == [LLAMA, "@cf/acme/cached-only"]
        assert not picker.refreshing
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPicker), what="the list to close")
        assert fake.catalog_requests == []


async def test_a_stale_cache_is_shown_at_once_then_refreshed(settings, fake):
    write_cache(cache_path(settings), [CatalogModel("@cf/acme/old-model", context_window=9000)],
                time.time() - FRESH_FOR - 3600)
    fake.catalog_gate = threading.Event()
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        picker = await open_models(pilot)
        assert picker.model_ids == ["@cf/acme/old-model"]
        await pilot.pause()
        assert "(fetched 25 h ago) · checking your account for the current list…" in screen_text(app)
        fake.catalog_gate.set()
        await wait_until(pilot, lambda: picker.catalog.source == "account", what="the refresh")
        assert sorted(picker.model_ids) == sorted(fake.models)
        assert len(fake.catalog_requests) == 1
    assert [m.id for m in read_cache(cache_path(settings)).models] == list(fake.models)


async def test_a_corrupt_cache_shows_the_table_then_the_account(settings, fake):
    path = cache_path(settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage")
    fake.catalog_gate = threading.Event()
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        picker = await open_models(pilot)
        assert picker.model_ids[0] == LLAMA
        assert sorted(picker.model_ids) == sorted(m.id for m in builtin_models())
        assert "damaged" in screen_text(app)
        fake.catalog_gate.set()
        await wait_until(pilot, lambda: picker.catalog.source == "account", what="the refresh")
    assert read_cache(path) is not None


async def test_offline_or_refused_falls_back_to_the_table_quietly(settings, fake):
    fake.catalog_reply = ErrorReply(401, 10000, "Authentication error")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        entries = len(app.chat.chat_log.entries)
        picker = await open_models(pilot)
        await wait_until(pilot, lambda: not picker.refreshing and picker.catalog.note, what="the fallback")
        assert picker.catalog.source == "built-in"
        assert sorted(picker.model_ids) == sorted(m.id for m in builtin_models())
        text = screen_text(app)
        assert "edgechat's built-in model table" in text and "showing the built-in table" in text
        assert fake.token not in text
        await choose(pilot, picker, "@cf/qwen/qwen3-30b-a3b-fp8")
        await wait_until(pilot, lambda: "/33k" in app.chat.status.plain, what="the table's window")
        assert len(app.chat.chat_log.entries) == entries + 1  # one line: the change, no error block


async def test_a_hostile_catalog_is_shown_as_plain_text(settings, fake):
    fake.catalog = [
        catalog_item(LLAMA, window=24_000,
                     description="[@click=app.quit]quit[/] \x1b[31mred\x1b]52;c;eA==\x07"),
        catalog_item("[b]@cf/x/y[/b]"), catalog_item("@cf/x/\x1b[2Jz"),
        catalog_item("@cf/acme/odd", properties=[{"property_id": "context_window", "value": "-3"},
                                                 {"property_id": "price", "value": "free!"}]),
    ]
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        picker = await open_models(pilot)
        await wait_until(pilot, lambda: picker.catalog.source == "account", what="the account's list")
        assert picker.model_ids == [LLAMA, "@cf/acme/odd"]
        text = screen_text(app)
        assert "[@click=app.quit]quit[/] red" in text
        assert "\x1b" not in text
        await pilot.click("#description")  # a click on the text does nothing
        assert app.is_running and isinstance(app.screen, ModelPicker)


async def test_remote_mode_says_the_agent_chooses(tmp_path):
    with AgentServer() as server:
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = make_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.agent is not None and app.chat.turn is None
                             and app.chat.status.state.startswith("connected"), what="the connection")
            app.chat.prompt.set_text("/model")
            await pilot.press("enter")
            await wait_until(pilot, lambda: "In remote mode the agent chooses its model"
                             in app.chat.chat_log.entries[-1].text, what="the answer")
            assert not isinstance(app.screen, ModelPicker)


# --- the usage line and /usage -------------------------------------------------------------------


def expected_cost(prompt: int, completion: int, price: ModelPrice) -> str:
    cost = reply_cost(Usage(prompt, completion), price)
    return f"{neurons_text(cost.neurons)} · {dollars_text(cost.dollars)}"


async def test_the_usage_line_under_a_reply(settings, fake):
    fake.enqueue(Reply("Hello there, friend.", usage={"prompt_tokens": 1000, "completion_tokens": 200,
                                                      "total_tokens": 1200}),
                 Reply("ok", usage={"prompt_tokens": 1300, "completion_tokens": 1, "total_tokens": 1301}))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await wait_ready(pilot)
        entry = app.chat.chat_log.entries[-1]
        assert re.fullmatch(r"1,000 in · 200 out · \d+\.\d s( · \d+ tok/s)? · 67\.3 neurons · \$0\.00074",
                            entry.figures), entry.figures
        assert entry.figures.endswith(expected_cost(1000, 200, ModelPrice(0.29, 2.25)))
        assert entry.widget.usage_line.text == entry.figures
        assert entry.figures in screen_text(app)
        assert app.chat.status.plain.endswith("last reply 200 tokens")
        await send(pilot, "again")
        await wait_ready(pilot)
        assert app.chat.status.plain.endswith("last reply 1 token")


async def test_the_usage_line_uses_the_account_catalogs_price(settings, fake):
    add_big_model(fake)
    fake.enqueue(Reply("fine", usage={"prompt_tokens": 5000, "completion_tokens": 500, "total_tokens": 5500}))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        picker = await open_models(pilot)
        await choose(pilot, picker, BIG)
        await wait_until(pilot, lambda: app.chat.header.model == BIG, what="the header")
        await send(pilot, "cost?")
        await wait_ready(pilot)
        figures = app.chat.chat_log.entries[-1].figures
        assert figures.endswith(" · 545 neurons · $0.006"), figures  # 5000 * $1/M + 500 * $2/M


async def test_a_remote_agent_without_usage_shows_only_the_time(tmp_path):
    with AgentServer() as server:
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = make_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.agent is not None and app.chat.turn is None
                             and app.chat.status.state.startswith("connected"), what="the connection")
            await send(pilot, "hello")
            await wait_until(pilot, lambda: app.chat.turn is None and app.chat.chat_log.entries[-1].figures,
                             what="the reply")
            figures = app.chat.chat_log.entries[-1].figures
            assert re.fullmatch(r"\d+\.\d s", figures) or " in · " in figures, figures


def write_usage_history(settings, user: str = "alice") -> None:
    now = datetime.now(UTC)
    today = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    old = (now - timedelta(days=3)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    turns = [
        (old, Usage(2000, 100, 2100), LLAMA),
        (today, Usage(1000, 200, 1200), LLAMA),
        (today, None, LLAMA),  # a stopped reply: no usage
        (today, Usage(300, 30, 330), "@cf/meta/llama-3.1-8b-instruct-fp8"),  # no price known
    ]
    lines = [encode_header(user, created=old)]
    for index, (when, usage, model) in enumerate(turns):
        lines.append(encode_turn(Message("user", f"question {index}", time=when),
                                 Message("assistant", f"answer {index}", time=when, model=model, usage=usage,
                                         stopped=usage is None)))
    (settings.data_dir / f"{user}.jsonl").write_bytes(b"".join(lines))


async def test_stored_replies_show_their_usage_and_usage_sums_them(settings, fake):
    write_usage_history(settings)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        replies = [e for e in app.chat.chat_log.entries if e.kind == "assistant"]
        llama = ModelPrice(0.29, 2.25)
        assert [e.figures for e in replies] == [
            f"2,000 in · 100 out · {expected_cost(2000, 100, llama)}",
            f"1,000 in · 200 out · {expected_cost(1000, 200, llama)}",
            None,
            "300 in · 30 out",
        ]
        app.chat.prompt.set_text("/usage")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.chat_log.entries[-1].text.startswith("This conversation"),
                         what="/usage")
        lines = app.chat.chat_log.entries[-1].text.splitlines()
        both = reply_cost(Usage(3000, 300), llama)
        assert lines[0] == ("This conversation: 4 replies · 3,300 in · 330 out · "
                            f"{neurons_text(both.neurons)} · {dollars_text(both.dollars)} (1 without usage).")
        assert lines[1] == (f"Today (since local midnight), every conversation: 3 replies · 1,300 in · "
                            f"230 out · {expected_cost(1000, 200, llama)} (1 without usage).")


async def test_usage_today_sums_every_conversation_and_branch_of_the_profile(settings, fake):
    """Today's replies count wherever they are now: an archived conversation, one in the trash, a
    branch left behind by /regen; replies from before midnight and other profiles' do not."""
    from edgechat_tui.storage.library import Library

    write_usage_history(settings)  # 3 replies today (1,000 + 300 in, 200 + 30 out, one without usage)
    write_usage_history(settings, user="bob")  # another profile's: never counted for alice
    library = Library(settings.data_dir, "alice", warn=lambda _text: None)
    library.archive(library.most_recent().id)
    trashed = library.create()
    library.close()
    fake.enqueue(Reply("from the trash", usage={"prompt_tokens": 7, "completion_tokens": 3}))
    fake.enqueue(Reply("first version", usage={"prompt_tokens": 10, "completion_tokens": 5}))
    fake.enqueue(Reply("second version", usage={"prompt_tokens": 20, "completion_tokens": 6}))
    app = make_app(settings)  # opens the newest active one: the one made above
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "for the trash")
        await wait_until(pilot, lambda: app.chat.turn is None and len(app.chat.chat_log.entries) == 2,
                         what="the first reply")
        agent = app.chat.session.agent
        await agent.conversations.delete(trashed.id)
        await agent.conversations.create()
        await send(pilot, "hello")
        await wait_until(pilot, lambda: any(e.text == "first version" for e in app.chat.chat_log.entries),
                         what="the reply")
        await wait_until(pilot, lambda: app.chat.turn is None, what="the turn's end")
        await send(pilot, "/regen")
        await wait_until(pilot, lambda: any(e.text == "second version" for e in app.chat.chat_log.entries)
                         and app.chat.turn is None, what="the new version")
        await send(pilot, "/usage")
        await wait_until(pilot, lambda: app.chat.chat_log.entries[-1].text.startswith("This conversation"),
                         what="/usage")
        lines = app.chat.chat_log.entries[-1].text.splitlines()
        assert lines[0].startswith("This conversation: 1 reply · 20 in · 6 out"), lines[0]
        # 1,000 + 300 + 7 + 10 + 20 in; 200 + 30 + 3 + 5 + 6 out; six replies, one without usage
        assert lines[1].startswith("Today (since local midnight), every conversation: 6 replies · "
                                   "1,337 in · 244 out"), lines[1]
        assert lines[1].endswith("(1 without usage)."), lines[1]


async def test_model_ids_complete_from_the_catalog(settings, fake):
    write_cache(cache_path(settings), [CatalogModel(LLAMA, context_window=24_000),
                                       CatalogModel("@cf/acme/completed-model", context_window=9000)],
                time.time())
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("/model @cf/acme/comp")
        await wait_until(pilot, lambda: [s.label for s in app.query_one("#suggestions").items]
                         == ["@cf/acme/completed-model"], what="the completion")


async def test_the_chosen_models_window_carries_over_to_another_profile(settings, fake):
    add_big_model(fake, window=150_000)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        picker = await open_models(pilot)
        await choose(pilot, picker, BIG)
        await wait_until(pilot, lambda: "/150k" in app.chat.status.plain, what="the budget")
        app.chat.prompt.set_text("/user bob")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.user == "bob" and app.chat.status.state == "ready",
                         what="the switch")
        assert app.agent.info.model == BIG
        assert (await app.agent.context_preview()).window == 150_000
