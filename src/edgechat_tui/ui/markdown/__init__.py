"""The reply renderer: Markdown cut into blocks, each rendered once to lines of Segments.

``blocks`` splits a growing text into final blocks and an open tail; ``document`` keeps the
rendered lines; ``render`` turns one block into lines (``inline``, ``table`` and ``lexers`` help);
``style`` is the vocabulary they share. The widget that shows it is
:class:`~edgechat_tui.ui.widgets.reply.ReplyMarkdown`.
"""

from edgechat_tui.ui.markdown.blocks import BlockSplitter, new_parser
from edgechat_tui.ui.markdown.document import RenderedDocument
from edgechat_tui.ui.markdown.style import Palette, resolve_code_theme

__all__ = ["BlockSplitter", "Palette", "RenderedDocument", "new_parser", "resolve_code_theme"]
