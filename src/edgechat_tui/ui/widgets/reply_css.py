"""How a reply looks, in CSS: a component class for each part of it, resolved into its palette.

Apart from ``reply_style`` (which resolves the palette, and imports the code theme with Pygments) so
that the early view's replies drawn from the render cache (``early_reply``) share it without loading
the Markdown renderer.
"""

from __future__ import annotations

__all__ = ["REPLY_COMPONENT_CLASSES", "REPLY_CSS", "reply_css"]

_HEADINGS = "".join(
    f"""
        & > .reply--h{level} {{
            color: $markdown-h{level}-color; background: $markdown-h{level}-background;
            text-style: $markdown-h{level}-text-style;
        }}"""
    for level in range(1, 7)
)

REPLY_CSS = """
    ReplyMarkdown {
        width: 1fr;
        height: auto;""" + _HEADINGS + """
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


def reply_css(type_name: str) -> str:
    """:data:`REPLY_CSS` for a widget class named ``type_name`` (the same rules, the same specificity)."""
    return REPLY_CSS.replace("ReplyMarkdown {", f"{type_name} {{", 1)
