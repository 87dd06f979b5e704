"""How a reply looks: its CSS (component classes for each part) and the palette resolved from it."""

from __future__ import annotations

from dataclasses import replace

from textual.highlight import ANSIDarkHighlightTheme, ANSILightHighlightTheme, HighlightTheme
from textual.style import Style
from textual.widget import Widget

from edgechat_tui.ui.markdown.style import Palette, resolve_code_theme

__all__ = ["REPLY_COMPONENT_CLASSES", "REPLY_CSS", "build_palette"]

REPLY_CSS = """
    ReplyMarkdown {
        width: 1fr;
        height: auto;
        & > .reply--h1 {
            color: $markdown-h1-color; background: $markdown-h1-background;
            text-style: $markdown-h1-text-style;
        }
        & > .reply--h2 {
            color: $markdown-h2-color; background: $markdown-h2-background;
            text-style: $markdown-h2-text-style;
        }
        & > .reply--h3 {
            color: $markdown-h3-color; background: $markdown-h3-background;
            text-style: $markdown-h3-text-style;
        }
        & > .reply--h4 {
            color: $markdown-h4-color; background: $markdown-h4-background;
            text-style: $markdown-h4-text-style;
        }
        & > .reply--h5 {
            color: $markdown-h5-color; background: $markdown-h5-background;
            text-style: $markdown-h5-text-style;
        }
        & > .reply--h6 {
            color: $markdown-h6-color; background: $markdown-h6-background;
            text-style: $markdown-h6-text-style;
        }
        &:dark > .reply--code-inline { background: $warning 10%; color: $text-warning 95%; }
        &:light > .reply--code-inline { background: $error 5%; color: $text-error 95%; }
        & > .reply--code-block { background: black 15%; }
        &:light > .reply--code-block { background: black 5%; }
        & > .reply--code-label { color: $text-muted; }
        & > .reply--link { color: $link-color; text-style: $link-style; }
        & > .reply--link-url { color: $text-muted; }
        & > .reply--quote { color: $text-muted; text-style: italic; }
        & > .reply--quote-bar { color: $text-primary 60%; }
        & > .reply--bullet { color: $text-primary; }
        & > .reply--rule { color: $foreground 30%; }
        & > .reply--table-border { color: $foreground 30%; }
        & > .reply--table-header { color: $text-primary; text-style: bold; }
        &:ansi > .reply--code-inline { background: ansi_default; color: ansi_yellow; }
        &:ansi > .reply--code-block { background: ansi_default; }
    }
"""

REPLY_COMPONENT_CLASSES: set[str] = {
    "reply--h1",
    "reply--h2",
    "reply--h3",
    "reply--h4",
    "reply--h5",
    "reply--h6",
    "reply--code-inline",
    "reply--code-block",
    "reply--code-label",
    "reply--link",
    "reply--link-url",
    "reply--quote",
    "reply--quote-bar",
    "reply--bullet",
    "reply--rule",
    "reply--table-border",
    "reply--table-header",
}


def build_palette(widget: Widget) -> Palette:
    """The reply's styles resolved from ``widget``'s CSS and the app's theme."""
    base = widget.visual_style

    def style(name: str) -> Style:
        # The full style, so "auto" colours are worked out against this widget's background;
        # that background itself is dropped, or it would hide the code panel's under it.
        resolved = widget.get_visual_style(name)
        if resolved.background == base.background:
            resolved = replace(resolved, background=None)
        return resolved

    app = widget.app
    if app.native_ansi_color:
        code_theme = ANSIDarkHighlightTheme if app.current_theme.dark else ANSILightHighlightTheme
    else:
        code_theme = HighlightTheme
    return Palette(
        base=base,
        headings=(
            style("reply--h1"),
            style("reply--h2"),
            style("reply--h3"),
            style("reply--h4"),
            style("reply--h5"),
            style("reply--h6"),
        ),
        code_inline=style("reply--code-inline"),
        code_block=style("reply--code-block"),
        code_label=style("reply--code-label"),
        link=style("reply--link"),
        link_url=style("reply--link-url"),
        quote=style("reply--quote"),
        quote_bar=style("reply--quote-bar"),
        bullet=style("reply--bullet"),
        rule=style("reply--rule"),
        table_border=style("reply--table-border"),
        table_header=style("reply--table-header"),
        code_tokens=resolve_code_theme(code_theme.STYLES, Style.parse),
    )
