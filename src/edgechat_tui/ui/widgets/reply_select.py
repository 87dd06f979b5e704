"""The part of :class:`~edgechat_tui.ui.widgets.reply.ReplyMarkdown` that takes part in text
selection and knows the reply's code blocks.

Textual's selection contract for a line-API widget: ``get_selection`` gives the selected part of
the text as drawn, ``selection_updated`` repaints (the widget draws the highlight and the offsets
in ``render_line``, with :mod:`edgechat_tui.ui.markdown.selection`). The code blocks are listed
from the Markdown in the order they are drawn, so the k-th block is the k-th code panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.containers import ScrollableContainer
from textual.geometry import Region
from textual.selection import Selection

from edgechat_tui.ui.markdown.code_blocks import CodeBlock, code_blocks
from edgechat_tui.ui.markdown.selection import code_top_lines, extract, line_text, selection_restyle
from edgechat_tui.ui.widgets.focusable import CopyRequest

__all__ = ["ReplySelection"]


class ReplySelection:
    """Mixed into ReplyMarkdown (``self`` is the widget; it owns the attributes used here)."""

    _document: Any
    _code_blocks: tuple[str, list[CodeBlock]]
    _restyle: Callable[[RichStyle | None], RichStyle] | None
    _selection: Selection | None
    failure: BaseException | None
    markdown: str
    content_size: Any
    region: Region
    ancestors: list[Any]
    screen: Any
    is_mounted: bool
    background_colors: Any
    # (and ``_plain_lines`` and ``refresh``, the widget's: not declared here, which would hide them)

    def _shown_lines(self) -> list[list[Segment]]:
        if self.failure is not None:
            return self._plain_lines(max(self.content_size.width, 1))
        document = self._document
        return [document.line(y) for y in range(document.height)]

    def shown_text(self) -> list[str]:
        """The text of each line as drawn (what a selection copies), decoration left out."""
        return [line_text(line) for line in self._shown_lines()]

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected part of the reply as drawn (Textual's selection calls this)."""
        return extract(self.shown_text(), selection), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        # The screen calls this at every change of this widget's selection: kept here, so that
        # drawing a line does not look the screen up (``text_selection`` walks up the DOM).
        self._selection = selection
        self._restyle = None
        self.refresh()

    def _selection_restyle(self) -> Callable[[RichStyle | None], RichStyle]:
        if self._restyle is None:
            styles = self.screen.get_component_styles("screen--selection")
            self._restyle = selection_restyle(styles.background, styles.color, self.background_colors[1])
        return self._restyle

    def code_blocks(self) -> list[CodeBlock]:
        """The reply's code blocks, in the order they are drawn."""
        markdown = self.markdown
        if self._code_blocks[0] != markdown:
            self._code_blocks = (markdown, code_blocks(markdown))
        return self._code_blocks[1]

    def code_block_count(self) -> int:
        return len(self.code_blocks())

    def code_copy_request(self, index: int) -> CopyRequest | None:
        """A request to copy code block ``index`` (from 0), named for the notice; None if none."""
        blocks = self.code_blocks()
        if not 0 <= index < len(blocks):
            return None
        block = blocks[index]
        language = f", {block.language}" if block.language else ""
        lines = "line" if block.line_count == 1 else "lines"
        return CopyRequest(block.code, f"code block {index + 1} of {len(blocks)}{language}, "
                                       f"{block.line_count} {lines}")

    def show_code_block(self, index: int) -> None:
        """Scroll the pane so that code block ``index`` is in view."""
        if self.failure is not None or not self.is_mounted:
            return
        tops = code_top_lines(self._shown_lines())
        blocks = self.code_blocks()
        if not 0 <= index < min(len(tops), len(blocks)):
            return
        height = blocks[index].line_count + 2
        pane = next((a for a in self.ancestors if isinstance(a, ScrollableContainer)), None)
        if pane is None:
            return
        y = int(pane.scroll_y) + self.region.y - pane.content_region.y + tops[index]
        pane.scroll_to_region(Region(0, y, 1, height), animate=False, immediate=True)
