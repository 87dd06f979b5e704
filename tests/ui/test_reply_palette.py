"""The palette cache: a reply gets from it exactly what resolving its own styles would give.

Held as a class: every theme Textual ships, replies in a normal, a stopped and a notice context,
before and after a theme change and a stylesheet change.
"""

from __future__ import annotations

from textual.app import App
from textual.containers import Vertical

from edgechat_tui.ui.widgets.messages import AssistantMessage
from edgechat_tui.ui.widgets.reply import ReplyMarkdown
from edgechat_tui.ui.widgets.reply_style import _resolve_palette, build_palette

TEXT = "# Title\n\nSome `code` and a [link](https://example.com)\n\n> quote\n\n```python\nx = 1\n```\n"


class Replies(App[None]):
    CSS = ".boxed ReplyMarkdown > .reply--h1 { color: red; } .boxed { background: $error 20%; }"

    def compose(self):
        yield AssistantMessage(TEXT, model="m")
        yield AssistantMessage(TEXT, model="m", stopped=True)
        with Vertical(classes="boxed"):
            yield ReplyMarkdown(TEXT)


def check_all(app: App) -> None:
    replies = list(app.query(ReplyMarkdown))
    assert len(replies) == 3
    for reply in replies:
        assert build_palette(reply) == _resolve_palette(reply, reply.visual_style), (app.theme, reply)
        assert build_palette(reply) == build_palette(reply)  # from the cache now: the same


async def test_the_cached_palette_is_the_resolved_one_in_every_theme_and_context() -> None:
    app = Replies()
    async with app.run_test(size=(80, 60)) as pilot:
        await pilot.pause()
        check_all(app)
        boxed = app.query_one(".boxed ReplyMarkdown", ReplyMarkdown)
        plain = app.query(ReplyMarkdown).first()
        assert build_palette(boxed).headings[0] != build_palette(plain).headings[0]  # contexts differ
        for theme in sorted(app.available_themes):
            app.theme = theme
            await pilot.pause()
            check_all(app)
        before = build_palette(boxed).headings[0]
        app.stylesheet.add_source(".boxed ReplyMarkdown > .reply--h1 { color: green; }", read_from=("x", ""))
        app.refresh_css(animate=False)
        await pilot.pause()
        check_all(app)
        assert build_palette(boxed).headings[0] != before  # the new rule is seen, not a stale entry
