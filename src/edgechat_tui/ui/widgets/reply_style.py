"""How a reply looks: its CSS (component classes for each part) and the palette resolved from it."""

from __future__ import annotations

from dataclasses import replace

from textual.highlight import ANSIDarkHighlightTheme, ANSILightHighlightTheme, HighlightTheme
from textual.style import Style
from textual.widget import Widget

from edgechat_tui.ui.markdown.style import Palette, resolve_code_theme
from edgechat_tui.ui.widgets.reply_css import REPLY_COMPONENT_CLASSES, REPLY_CSS

__all__ = ["REPLY_COMPONENT_CLASSES", "REPLY_CSS", "build_palette"]

# Palettes already resolved, by what resolving one depends on (see ``_palette_key``): every reply
# on screen resolves the same ~20 component styles against the same CSS, each time ~1-2 ms, and
# the replies drawn in the first frame pay it before that frame. A few entries: themes, contexts.
_PALETTES: dict[tuple[object, ...], tuple[object, Palette]] = {}
_PALETTES_KEPT = 16


def _palette_key(widget: Widget, base: Style) -> tuple[object, ...]:
    """Everything the component styles of ``widget`` are resolved from: the stylesheet's rules (by
    identity: a reparse makes new ones), the theme, the colour mode, the widget's own style and
    the classes and pseudo-classes of the widget and each of its ancestors (what selectors match)."""
    app = widget.app
    nodes = tuple((type(node).__name__, frozenset(node.classes), frozenset(node.get_pseudo_classes()))
                  for node in widget.ancestors_with_self)
    return (id(app.stylesheet.rules), app.theme, app.native_ansi_color, base, nodes)


def build_palette(widget: Widget) -> Palette:
    """The reply's styles resolved from ``widget``'s CSS and the app's theme (resolved once for
    every reply that would resolve them alike)."""
    base = widget.visual_style
    key = _palette_key(widget, base)
    found = _PALETTES.get(key)
    if found is not None and found[0] is widget.app.stylesheet.rules:
        return found[1]
    palette = _resolve_palette(widget, base)
    if len(_PALETTES) >= _PALETTES_KEPT:
        _PALETTES.pop(next(iter(_PALETTES)))
    # The rules object is kept with the entry, so its id cannot be reused by another while cached.
    _PALETTES[key] = (widget.app.stylesheet.rules, palette)
    return palette


def _resolve_palette(widget: Widget, base: Style) -> Palette:

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
