"""``/search TEXT``: the matching messages of every conversation, newest first, matched words
highlighted; Enter on one opens that conversation at that message.

The hits' snippets and titles are untrusted: sanitised, and the matched words are marked with
``Content`` spans at the hit's ``highlights`` offsets (never markup).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from edgechat_tui.core.conversations import SearchHit
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.widgets.conversations import activity_text, clean_title

__all__ = ["SearchScreen", "hit_content", "snippet_content"]

MATCH_STYLE = "bold reverse $text-warning"


def snippet_content(hit: SearchHit) -> Content:
    """The snippet on one line, its matched words highlighted.

    Each character is sanitised on its own, so that the offsets still point at the same words;
    a control character becomes a space (never a sequence the terminal acts on).
    """
    chars = [sanitize(ch) or " " if ch not in "\n\r\t" else " " for ch in hit.snippet]
    # A character sanitize() turned into more than one (it does not) would shift the offsets: keep one.
    text = "".join(ch[:1] for ch in chars)
    content = Content(text)
    for start, end in hit.highlights:
        start, end = max(0, start), min(len(text), end)
        if start < end:
            content = content.stylize(MATCH_STYLE, start, end)
    return content


def hit_content(hit: SearchHit) -> Content:
    """A result: the conversation's title, who wrote it and when, then the snippet."""
    role = "you" if hit.role == "user" else sanitize(hit.role)
    where = f"  {role} · {activity_text(hit.time)}" + ("  · archived" if hit.archived else "")
    return Content.assemble((clean_title(hit.title, width=60), "bold"), (where, "$text-muted"), "\n",
                            snippet_content(hit))


class SearchScreen(ModalScreen["SearchHit | None"]):
    """The results of one search; dismisses with the hit chosen, or None (Esc)."""

    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    SearchScreen > Vertical {
        width: 96;
        max-width: 100%;
        height: 80%;
        padding: 0 1;
        border: thick $accent 80%;
        background: $surface;
    }
    SearchScreen #search-summary { height: auto; color: $text-muted; padding: 0 1; }
    SearchScreen OptionList, SearchScreen OptionList:focus {
        height: 1fr; border: none; background: $surface;
    }
    SearchScreen OptionList > .option-list--option { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, query: str, hits: list[SearchHit]) -> None:
        super().__init__()
        self.search_text = query
        self.hits = list(hits)
        self.results = OptionList(*[Option(hit_content(hit), id=str(index))
                                    for index, hit in enumerate(self.hits)], id="search-results")

    def compose(self) -> ComposeResult:
        count = len(self.hits)
        noun = "message matches" if count == 1 else "messages match"
        summary = (f"{count:,} {noun}, newest first · Enter opens the conversation there · Esc closes"
                   if count else "Nothing matches: try other words. Esc closes.")
        with Vertical() as box:
            box.border_title = Content(f"Search: {' '.join(sanitize(self.search_text).split())}")
            yield Static(Content(summary), id="search-summary")
            yield self.results

    def on_mount(self) -> None:
        self.results.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.hits[int(event.option.id or 0)])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
