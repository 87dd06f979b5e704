"""SVG snapshots of the conversation library's views: the list panel, and search results.

Deterministic: the conversations are files with fixed times (shown in UTC here), titles are the
user's, and no model call is made. Refresh after a reviewed change with
``pytest tests/ui/test_library_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import time

import pytest

from edgechat_tui.ui.app import EdgechatApp
from edgechat_tui.ui.screens.search import SearchScreen
from tests.ui.conftest import SIZE, make_settings, wait_until
from tests.ui.library_helpers import wait_library, write_conversation


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def settings(tmp_path, fake):
    settings = make_settings(tmp_path, fake, EDGECHAT_AUTO_TITLE="false")
    data = settings.data_dir
    write_conversation(data, "alice", [("How do I reverse a list?", "Use `reversed()` or a slice."),
                                       ("Is the moon made of cheese?", "No: the Moon is rock.")],
                       day=1, title="Reversing lists")
    write_conversation(data, "alice", [("Tides?", "The Moon pulls the seas."), ("And the Sun?", "Less so.")],
                       day=2, title="How tides work [b]really[/b]")
    write_conversation(data, "alice", 12, day=3, hour=9, title="A long conversation about many things, "
                       "with a title too long for the panel")
    write_conversation(data, "alice", [("Old stuff", "kept aside")], day=1, hour=8, title="Archived one",
                       archived=True)
    return settings


def test_conversation_list(snap_compare, settings):
    async def shown(pilot):
        app = pilot.app
        await wait_library(pilot)
        app.chat.panel.loaded = False
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: app.chat.panel.loaded, what="the list")

    app = EdgechatApp(settings, "alice", cursor_blink=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=shown)


def test_search_results(snap_compare, settings):
    async def shown(pilot):
        app = pilot.app
        await wait_library(pilot)
        app.chat.prompt.set_text("/search moon")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), what="the results")

    app = EdgechatApp(settings, "alice", cursor_blink=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=shown)
