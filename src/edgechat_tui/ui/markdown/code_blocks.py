"""The code blocks of a reply, from its Markdown: what "copy this code block" puts on the clipboard."""

from __future__ import annotations

from dataclasses import dataclass

from edgechat_tui.ui.markdown.blocks import new_parser
from edgechat_tui.ui.markdown.inline import fence_language

__all__ = ["CodeBlock", "code_blocks"]


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One code block: its language ("" if none given) and its code, without the last newline."""

    language: str
    code: str

    @property
    def line_count(self) -> int:
        return self.code.count("\n") + 1 if self.code else 0


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every code block in ``markdown`` (fenced or indented, nested in lists and quotes too), in order.

    The order is the order they are drawn in, so the k-th block is the k-th code panel on screen.
    An unclosed fence (a reply cut off mid-block) counts: Markdown closes it at the end.
    """
    blocks = []
    for token in new_parser().parse(markdown):
        if token.type in ("fence", "code_block"):
            code = token.content[:-1] if token.content.endswith("\n") else token.content
            blocks.append(CodeBlock(fence_language(token.info) if token.type == "fence" else "", code))
    return blocks
