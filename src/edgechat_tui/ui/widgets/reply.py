"""A model reply shown as Markdown, streamed in as it arrives, at a cost linear in its length.

Textual's ``Markdown`` mounts a widget per block, and a long reply of a few hundred blocks takes
seconds to lay out. This widget is a single line-API widget instead:

* the text is cut into top-level blocks (:mod:`._md_blocks`); a block that can no longer change
  is rendered once, to Strips, and kept; only the open last block is re-rendered as text arrives;
* updates are coalesced: ``append`` only stores text, and at most one render happens per frame
  interval (longer if rendering itself is slow), so a fast stream cannot flood the event loop;
* only the lines that are on screen are drawn (``render_line``); the widget's height is its line
  count, so it sits in the chat's scroll container like any ``height: auto`` widget;
* a width or theme change re-renders the kept blocks from their source.

All text is untrusted: it is sanitised here (ESC, C0/C1 controls, escape sequences split across
chunks) and never meets a markup parser. Links are shown as text with their URL; nothing clicks.
"""

from __future__ import annotations

from time import monotonic
from typing import ClassVar

from textual.geometry import Region, Size
from textual.highlight import ANSIDarkHighlightTheme, ANSILightHighlightTheme, HighlightTheme
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

from edgechat_tui.sanitize import StreamSanitizer
from edgechat_tui.ui.widgets._md_blocks import BlockSplitter, new_parser
from edgechat_tui.ui.widgets._md_render import BlockRenderer, Palette, resolve_code_theme


class ReplyMarkdown(Widget):
    """A reply rendered as Markdown; feed it with ``append`` and end it with ``finish``.

    ``ReplyMarkdown(text)`` shows a complete reply (history); ``ReplyMarkdown(final=False)``
    starts a streamed one. Text is sanitised inside, so no caller can forget to.
    """

    DEFAULT_CSS = """
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

    COMPONENT_CLASSES: ClassVar[set[str]] = {
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

    UPDATE_INTERVAL: ClassVar[float] = 1 / 60
    """Least time between two renders of a streaming reply (one frame at Textual's 60 fps)."""

    def __init__(
        self,
        text: str = "",
        *,
        final: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._sanitizer = StreamSanitizer()
        self._splitter = BlockSplitter()
        self._parser = new_parser()
        self._parts: list[str] = []
        self._text_cache: str | None = ""
        # Final blocks: their source, and their lines at the current width and palette.
        self._sources: list[str] = []
        self._rendered_blocks = 0
        self._lines: list[Strip] = []
        self._env: dict = {}
        self._tail_lines: list[Strip] = []
        self._tail_dirty = False
        self._width = 0
        self._palette: Palette | None = None
        self._palette_stale = True
        self._update_pending = False
        self._next_update = 0.0
        self._final = False
        self._add(text)
        if final:
            self.finish()

    # -- public API -----------------------------------------------------------------------------

    @property
    def markdown(self) -> str:
        """The text so far, sanitised (what is rendered)."""
        if self._text_cache is None:
            self._text_cache = "".join(self._parts)
            self._parts = [self._text_cache]
        return self._text_cache

    @property
    def final(self) -> bool:
        """True once the stream has ended (``finish`` was called)."""
        return self._final

    def append(self, text: str) -> None:
        """Add streamed text. Cheap: rendering happens at most once per frame, later."""
        if self._final:
            raise RuntimeError("append() after finish()")
        if self._add(text):
            self._schedule_update()

    def finish(self) -> None:
        """The stream ended: every block is final (an open code block is closed) and rendered."""
        if self._final:
            return
        self._final = True
        self._add(self._sanitizer.flush())
        self._sources.extend(self._splitter.close())
        self._tail_dirty = True
        if self.is_mounted:
            self._update()

    def rendered_lines(self) -> list[Strip]:
        """All lines as last rendered (final blocks and the open tail), for tests and tools."""
        return [*self._lines, *self._tail_separated()]

    # -- text intake ----------------------------------------------------------------------------

    def _add(self, text: str) -> bool:
        """Sanitise and store ``text``; True if anything is left to show."""
        safe = self._sanitizer.feed(text) if text else ""
        if not safe:
            return False
        self._parts.append(safe)
        self._text_cache = None
        self._splitter.feed(safe)
        self._tail_dirty = True
        return True

    def _schedule_update(self) -> None:
        """Render soon, but not more often than once per update interval."""
        if self._update_pending or not self.is_mounted:
            return
        self._update_pending = True
        delay = self._next_update - monotonic()
        if delay > 0:
            self.set_timer(delay, self._update)
        else:
            self.call_later(self._update)

    def on_mount(self) -> None:
        if self._tail_dirty:
            self._schedule_update()

    def _update(self) -> None:
        """Take the blocks that became final, re-render the tail, and refresh what changed."""
        self._update_pending = False
        started = monotonic()
        if not self._final:
            self._sources.extend(self._splitter.take_final())
        old_height = len(self._lines) + len(self._tail_separated())
        first_changed = len(self._lines)
        if self._width:
            self._render_pending()
        new_height = len(self._lines) + len(self._tail_separated())
        if new_height != old_height or not self._width:
            self.refresh(layout=True)
        else:
            # Same height: only the lines from the first new block onwards changed.
            self.refresh(Region(0, first_changed, self.size.width, new_height - first_changed))
        # Rendering slower than a frame stretches the interval, keeping the app responsive.
        self._next_update = monotonic() + max(self.UPDATE_INTERVAL, 2 * (monotonic() - started))

    # -- rendering ------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """Theme or CSS changed: rebuild the palette; lines are re-rendered if it differs."""
        self._palette_stale = True
        super().notify_style_update()

    def _build_palette(self) -> Palette:
        def style(name: str) -> Style:
            return self.get_visual_style(name, partial=True)

        app = self.app
        if app.native_ansi_color:
            code_theme = ANSIDarkHighlightTheme if app.current_theme.dark else ANSILightHighlightTheme
        else:
            code_theme = HighlightTheme
        return Palette(
            base=self.visual_style,
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

    def _ensure_layout(self, width: int) -> None:
        """Make the kept lines match ``width`` and the current palette, re-rendering if not."""
        width = max(width, 1)
        if self._palette_stale:
            self._palette_stale = False
            palette = self._build_palette()
            if palette != self._palette:
                self._palette = palette
                self._width = 0
        if width != self._width:
            self._width = width
            self._lines = []
            self._env = {}
            self._rendered_blocks = 0
            self._tail_dirty = True
        self._render_pending()

    def _render_pending(self) -> None:
        """Render the final blocks not yet rendered, and the tail if its text changed."""
        if self._palette is None:
            return
        renderer = BlockRenderer(self._parser, self._palette, self._width)
        lines = self._lines
        for source in self._sources[self._rendered_blocks :]:
            block = renderer.render_source(source, self._env)
            if block:
                if lines:
                    lines.append(Strip([]))
                lines.extend(block)
        self._rendered_blocks = len(self._sources)
        if self._tail_dirty:
            self._tail_dirty = False
            tail = self._splitter.tail if not self._splitter.closed else ""
            if tail.strip():
                # The tail sees the link definitions made so far, but may not add to them.
                env = {"references": dict(self._env.get("references", {}))}
                self._tail_lines = renderer.render_source(tail, env)
            else:
                self._tail_lines = []

    def _tail_separated(self) -> list[Strip]:
        """The tail's lines, with the blank line that parts it from the final blocks."""
        if self._tail_lines and self._lines:
            return [Strip([]), *self._tail_lines]
        return self._tail_lines

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._ensure_layout(width)
        return len(self._lines) + len(self._tail_separated())

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if width <= 0:
            return Strip([])
        if width != self._width or self._palette_stale:
            self._ensure_layout(width)
        lines = self._lines
        if y < len(lines):
            strip = lines[y]
        else:
            tail = self._tail_separated()
            index = y - len(lines)
            strip = tail[index] if 0 <= index < len(tail) else Strip([])
        base = self._palette.base.rich_style if self._palette is not None else None
        return strip.crop_extend(0, width, base)
